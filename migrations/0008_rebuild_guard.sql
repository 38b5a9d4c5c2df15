-- A rebuild recounts rollups from the rows still in events: it must see which apps'
-- days have been expired (archived and removed), and refuse to recount those.
GRANT SELECT ON event_archives TO sluice_aggregate;
