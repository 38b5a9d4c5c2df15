import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sluice.intake.validation import (
    MAX_ISSUES,
    MAX_MESSAGE_CHARS,
    MAX_PATH_CHARS,
    OMITTED_KEYWORD,
    UNUSABLE_RULE,
    VALID,
    InvalidRule,
    RuleSet,
    check_rule,
    json_pointer,
)

LOGIN_RULE = {
    "type": "object",
    "required": ["userId"],
    "properties": {
        "userId": {"type": "integer"},
        "method": {"enum": ["password", "sso"]},
        "email": {"type": "string", "format": "email"},
        "device": {
            "type": "object",
            "properties": {"os": {"type": "string"}},
        },
        "tags": {"prefixItems": [{"type": "integer"}]},
    },
}
# Issue 9's hostile pattern: lookaround sent the default engine backtracking, and
# 300 strings against it held ingest for its whole 10 s timeout.
HOSTILE_PATTERN = "^(?:(?!-)[a-z0-9]+)+$"


def test_event_name_without_a_rule_is_valid():
    assert (
        RuleSet({"user_login": LOGIN_RULE}).check("page_view", {"eventName": "page_view"}) == VALID
    )


def test_event_keeping_its_rule_is_valid():
    event = {"eventName": "user_login", "userId": 3, "method": "sso", "email": "a@example.com"}
    verdict = RuleSet({"user_login": LOGIN_RULE}).check("user_login", event)
    assert verdict.valid
    assert verdict.stored() is None


def test_every_error_is_reported_with_pointer_message_and_keyword():
    event = {
        "eventName": "user_login",
        "method": "carrier pigeon",
        "device": {"os": 11},
        "email": "not an email",
        "tags": ["x"],
    }
    verdict = RuleSet({"user_login": LOGIN_RULE}).check("user_login", event)
    found = {(issue.path, issue.keyword) for issue in verdict.issues}
    assert found == {
        ("", "required"),
        ("/method", "enum"),
        ("/device/os", "type"),
        ("/email", "format"),
        ("/tags/0", "type"),  # a 2020-12 keyword: validators stuck on draft 7 miss this
    }
    assert all(issue.message for issue in verdict.issues)
    assert verdict.omitted == 0
    assert verdict.stored() == list(verdict.issues)


def test_rule_naming_an_older_draft_is_honoured():
    # Draft 7's tuple form of items; under 2020-12 an array here would be an error.
    rule = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "properties": {"t": {"items": [{"type": "integer"}]}},
    }
    rules = RuleSet({"e": rule})
    assert rules.check("e", {"t": [1]}).valid
    assert [i.path for i in rules.check("e", {"t": ["x"]}).issues] == ["/t/0"]


def test_json_pointer_escapes_tilde_and_slash():
    assert json_pointer([]) == ""
    assert json_pointer(["a/b", "c~d", 0]) == "/a~1b/c~0d/0"


@pytest.mark.parametrize("schema", [{"type": 12}, {"minLength": "x"}, ["not", "an", "object"]])
def test_invalid_rules_are_refused_when_saved(schema):
    with pytest.raises(InvalidRule):
        check_rule(schema)


# --- the regex dialect: linear time, so no lookaround and no backreferences ---------


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "array", "items": {"type": "string", "pattern": HOSTILE_PATTERN}},
        {"properties": {"slug": {"pattern": "^(?=.*[0-9])[a-z0-9]+$"}}},
        {"properties": {"slug": {"pattern": "(?<!x)y"}}},
        {"patternProperties": {HOSTILE_PATTERN: {"type": "integer"}}},
    ],
)
def test_patterns_with_lookaround_are_refused_when_saved(schema):
    with pytest.raises(InvalidRule, match="lookaround or a backreference, which is not supported"):
        check_rule(schema)


def test_refusal_names_the_pattern_and_where_it_is():
    with pytest.raises(InvalidRule) as refused:
        check_rule({"properties": {"a/b": {"pattern": "(a)\\1"}}})
    assert "'(a)\\\\1' at /properties/a~1b/pattern" in str(refused.value)


def test_a_malformed_pattern_is_called_malformed():
    with pytest.raises(InvalidRule, match=r"'\(a' at /pattern is not a valid regular expression"):
        check_rule({"pattern": "(a"})


def test_linear_patterns_keep_working():
    # The hostile pattern without its lookaround means the same: [a-z0-9] has no "-".
    rules = RuleSet({"e": {"items": {"pattern": "^(?:[a-z0-9]+)+$"}}})
    verdict = rules.check("e", ["a" * 16 + "-"] * 300)
    assert verdict.issues[0].keyword == "pattern"
    assert len(verdict.issues) + verdict.omitted == 300
    assert rules.check("e", ["abc", "x9"]).valid
    # \d means ASCII digits, as in ECMA-262, not any Unicode digit.
    assert not RuleSet({"e": {"pattern": "^\\d+$"}}).check("e", "١٢").valid


def test_format_regex_still_accepts_ecma_lookaround_in_events():
    # `format: regex` asks whether a string is an ECMA-262 regex; nothing runs it.
    rules = RuleSet({"e": {"format": "regex"}})
    assert rules.check("e", HOSTILE_PATTERN).valid
    assert not rules.check("e", "(a").valid


def test_a_stored_rule_with_lookaround_is_never_run():
    rules = RuleSet({"e": {"items": {"pattern": HOSTILE_PATTERN}}})
    assert rules.broken == ["e"]
    assert rules.check("e", ["a" * 16 + "-"] * 300) == UNUSABLE_RULE


# --- rules fetch nothing ----------------------------------------------------------------


@pytest.fixture
def schema_server():
    """A web server holding a valid schema, which records every request it gets."""
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            body = json.dumps({"type": "integer"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    server.server_close()


def test_ref_to_a_web_address_is_refused_and_not_fetched(schema_server):
    base, requests = schema_server
    with pytest.raises(InvalidRule, match="Sluice fetches nothing a rule names"):
        check_rule({"properties": {"n": {"$ref": f"{base}/n.json"}}})
    assert requests == []


def test_ref_to_a_file_is_refused(tmp_path):
    schema_file = tmp_path / "n.json"
    schema_file.write_text(json.dumps({"type": "integer"}))
    with pytest.raises(InvalidRule, match=f"may not refer to '{schema_file.as_uri()}'"):
        check_rule({"$ref": schema_file.as_uri()})


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "https://example.com/s.json"},
        {"$ref": "other.json"},
        {"$id": "https://example.com/root", "$ref": "part.json"},
        {"$schema": "https://example.com/my-meta-schema"},
    ],
)
def test_every_external_reference_is_refused(schema):
    with pytest.raises(InvalidRule, match="may not refer to"):
        check_rule(schema)


def test_internal_refs_and_standard_meta_schemas_work():
    rule = {
        "$defs": {"positive": {"type": "integer", "minimum": 1}},
        "properties": {
            "n": {"$ref": "#/$defs/positive"},
            "schema": {"$ref": "https://json-schema.org/draft/2020-12/schema"},
        },
    }
    check_rule(rule)
    rules = RuleSet({"e": rule})
    assert rules.check("e", {"n": 2, "schema": {"type": "string"}}).valid
    assert {i.path for i in rules.check("e", {"n": 0, "schema": {"type": 12}}).issues} == {
        "/n",
        "/schema/type",
    }
    check_rule({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"})


# --- a bounded verdict ------------------------------------------------------------------


def test_issues_are_capped_and_the_rest_counted():
    rules = RuleSet({"e": {"items": {"type": "string"}}})
    verdict = rules.check("e", list(range(5_000)))
    assert len(verdict.issues) == MAX_ISSUES
    assert [i.path for i in verdict.issues] == [f"/{n}" for n in range(MAX_ISSUES)]
    assert verdict.omitted == 5_000 - MAX_ISSUES
    *kept, more = verdict.stored()
    assert kept == list(verdict.issues)
    assert (more.path, more.keyword) == ("", OMITTED_KEYWORD)
    assert more.message == f"{5_000 - MAX_ISSUES} more errors were found and not kept"


def test_long_messages_and_paths_are_cut():
    rules = RuleSet({"e": {"additionalProperties": {"enum": ["x"]}}})
    [issue] = rules.check("e", {"k" * 5_000: "v" * 5_000}).issues
    assert len(issue.message) == MAX_MESSAGE_CHARS
    assert issue.message.startswith('"vvv') and issue.message.endswith("…")
    assert len(issue.path) == MAX_PATH_CHARS
    assert issue.path.startswith("/kkk")


# --- a stored rule that does not compile --------------------------------------------------


def test_broken_rule_makes_its_events_invalid_and_leaves_the_others_alone():
    rules = RuleSet({"bad": {"type": 12}, "user_login": LOGIN_RULE})
    assert rules.broken == ["bad"]
    verdict = rules.check("bad", {"anything": 1})
    assert verdict == UNUSABLE_RULE
    [issue] = verdict.stored()
    assert (issue.path, issue.keyword) == ("", "rule")
    assert "cannot be applied" in issue.message
    assert not rules.check("user_login", {"eventName": "user_login"}).valid
    assert rules.check("page_view", {}).valid
