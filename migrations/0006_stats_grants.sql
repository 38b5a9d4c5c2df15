-- The management API's stats route (GET /api/apps/{app_id}/stats) answers from the
-- rollups alone: the hourly and daily counts, and how far the aggregator has got
-- (complete_through). Read only: the aggregate function alone writes them.
GRANT SELECT ON event_counts_hourly, event_counts_daily, aggregate_position TO sluice_manage;
