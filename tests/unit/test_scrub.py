"""scrub(): every credential shape named in its module docstring is masked, readable text stays."""
import pytest

from controller.telemetry.scrub import MASK, scrub

GHP = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
PAT = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMN"
GLPAT = "glpat-" + "xY7_zQ9-aB3cD4eF5gH6"
AKIA = "AKIA" + "IOSFODNN7EXAMPLE"
PEM = ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n"
       "QyNTUxOQAAACD0\n-----END OPENSSH PRIVATE KEY-----")


@pytest.mark.parametrize("text, secret", [
    ("fatal: unable to access 'https://bob:hunter2pass@git.example.com/x.git/': 403", "hunter2pass"),
    ("fetch https://x-access-token:" + GHP + "@github.com/o/r.git failed", GHP),
    ("clone http://s3cr3ttok@host:3000/r failed", "s3cr3ttok"),
    ("token " + GHP + " rejected", GHP),
    ("pat=" + PAT, PAT),
    ("GitLab said: " + GLPAT, GLPAT),
    ("aws key " + AKIA + " in env", AKIA),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc", "eyJhbGciOiJIUzI1NiJ9"),
    ("header Authorization: token 0123456789abcdef", "0123456789abcdef"),
    ("curl -H 'Authorization: Basic Ym9iOmh1bnRlcjI=' x", "Ym9iOmh1bnRlcjI="),
    ("sent Bearer abc123def456", "abc123def456"),
    ("Step 3/5 : RUN echo DB_PASSWORD=sup3r-s3cret", "sup3r-s3cret"),
    ("password='quoted value'", "quoted value"),
    ('{"client_secret": "xyzzy-42"}', "xyzzy-42"),
    ("api_key: k-123456", "k-123456"),
    ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG", "wJalrXUtnFEMI"),
    ("dockerfile parse error: unknown instruction " + PEM, "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"),
    ("truncated -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA", "MIIEowIBAAKCAQEA"),
    # issue 9: a Docker config.json's logins and the Engine's registry login headers
    ('{"auths": {"r:5000": {"auth": "a2NpOnB3LXh5eg=="}}}', "a2NpOnB3LXh5eg=="),
    ('{"username": "ci", "password": "pw-xyz-123"}', "pw-xyz-123"),
    ('{"identitytoken": "idt-0123456789"}', "idt-0123456789"),
    ('"registrytoken": "rgt-0123456789"', "rgt-0123456789"),
    ("X-Registry-Auth: eyJ1c2VybmFtZSI6ImNpIn0=", "eyJ1c2VybmFtZSI6ImNpIn0="),
    ("X-Registry-Config: eyJyOjEiOnt9fQ==", "eyJyOjEiOnt9fQ=="),
])
def test_credential_is_masked(text, secret):
    out = scrub(text)
    assert secret not in out and MASK in out, out


def test_userinfo_keeps_host_and_path():
    assert scrub("git fetch https://u:p@git.example.com/team/deploy.git: timeout") == \
        "git fetch https://***@git.example.com/team/deploy.git: timeout"


def test_pem_keeps_text_around_it():
    assert scrub(f"before {PEM} after") == f"before <private key {MASK}> after"


def test_known_values_are_removed_whatever_their_shape():
    assert scrub("remote said: plainvalue42 is wrong", known=["plainvalue42"]) == \
        f"remote said: {MASK} is wrong"
    assert scrub("a b c", known=["", "a"]) == "a b c"  # too short to mask


@pytest.mark.parametrize("text", [
    "stack web: services.app.image: invalid reference format",
    "stack web: secret 'db': file 'db.txt' not found (stack.yml line 4)",
    "web_web: rolled_back (task 3: unhealthy container)",
    "basic configuration is missing",
    "pulled 127.0.0.1:5000/web_web:3f2c1a9b7e10@sha256:" + "a" * 64,
    "ssh git@github.com:org/repo.git",
    "secrets=3 configs=2",
    "http://127.0.0.1:5000/v2/ answered 500",
    "oauth2 handshake failed",
    "",
])
def test_ordinary_text_is_unchanged(text):
    assert scrub(text) == text


@pytest.mark.parametrize("text", [
    f"https://u:{GHP}@h/r {GLPAT} Authorization: Bearer x.y.z1 {PEM} tail password=p4ss",
    "Bearer abc123def456 and basic Ym9iOmh1bnRlcjI=",
])
def test_idempotent(text):
    once = scrub(text)
    assert scrub(once) == once


def test_non_string_is_converted():
    assert scrub(ValueError("https://a:b@h/x")) == "https://***@h/x"


def test_url_cut_inside_userinfo_is_masked_but_host_port_is_not():
    assert scrub("fetch failed: https://bob:hunter2pa") == "fetch failed: https://***"
    assert scrub("registry http://127.0.0.1:5000") == "registry http://127.0.0.1:5000"
    assert scrub("see http://host:") == "see http://host:"


# --- the boundaries: status store, log formatter, state-record labels, printed reports --------

def test_status_store_scrubs_what_it_stores():
    from controller.model import HistoryEntry, StackStatus
    from controller.model.status import RolloutResult
    from controller.reconcile.state import StatusStore
    store = StatusStore()
    store.source_failed("git fetch https://u:" + GHP + "@h/r failed")
    st = StackStatus("web", last_error="build: DB_PASSWORD=hunter22 exit 3",
                     warnings=["token " + GLPAT],
                     rollouts=[RolloutResult("web_app", "failed", message="Bearer abc123def456")])
    store.put(st, HistoryEntry("abc", "failed", 0.0, message="https://bob:pw123@x/y"))
    text = repr(store.snapshot())
    for secret in (GHP, "hunter22", GLPAT, "abc123def456", "pw123"):
        assert secret not in text, secret
    assert "DB_PASSWORD=***" in text


def test_log_formatter_scrubs_message_fields_and_traceback():
    import logging
    from controller.telemetry.logs import LogfmtFormatter
    try:
        raise RuntimeError("clone https://bob:pw123@x/y")
    except RuntimeError:
        import sys
        exc_info = sys.exc_info()
    rec = logging.LogRecord("t", logging.ERROR, __file__, 1, "using %s", (GHP,), exc_info)
    rec.url = "https://bob:pw123@x/y"
    rec.count = 3
    line = LogfmtFormatter().format(rec)
    assert GHP not in line and "pw123" not in line and "count=3" in line, line


def test_state_record_labels_are_scrubbed():
    from controller.model.live import StackRecord
    from controller.swarm.parse import record_labels
    labels = record_labels("web", StackRecord(failed_message=("pull https://bob:pw123@reg/x " * 9)[:200],
                                              failed_reason="RolledBack"))
    assert "pw123" not in repr(labels) and labels["io.keelson.failed-reason"] == "RolledBack"


def test_scrubbing_writer():
    import io
    from controller.telemetry.scrub import ScrubbingWriter
    buf = io.StringIO()
    print("stack web: token", GHP, file=ScrubbingWriter(buf))
    assert buf.getvalue() == f"stack web: token {MASK}\n"


@pytest.mark.parametrize("unit", ["a_", "a.", "a-", "_", "a+", "1.", "x_password_", "a://b:",
                                  "bearer ", "-----BEGIN A", "password= ", "authorization: "])
def test_linear_time_on_hostile_input(unit):
    """Build output is the repo's to choose: 1 MB of any repeated pattern scrubs in seconds (a
    backtracking pattern took 3.8 s for 10 KB, i.e. hours for 1 MB)."""
    import time
    text = unit * (1_000_000 // len(unit))
    t0 = time.monotonic()
    scrub(text)
    assert time.monotonic() - t0 < 10
