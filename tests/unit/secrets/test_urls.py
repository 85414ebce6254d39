"""Secrets in URLs: every form a password can take is masked in messages, plans, manifests and reports; a study
storage is only ever a file edgeopt creates or this tune's own Optuna study."""
from __future__ import annotations

import json
import sqlite3

import pytest

from conftest import TINY, run_cli, write_spec
from edgeopt import urls

SECRET = "S3cr3tPw"
# (URL, what must be left of it): every way a password rides in a URL
FORMS = [
    (f"postgresql://alice:{SECRET}@db.example:5432/studies", "postgresql://alice:***@db.example:5432/studies"),
    (f"postgresql://:{SECRET}@db.example/studies", "postgresql://:***@db.example/studies"),
    (f"postgresql+psycopg2://alice:{SECRET}@h/db", "postgresql+psycopg2://alice:***@h/db"),
    (f"redis://:{SECRET}@cache:6379/0", "redis://:***@cache:6379/0"),
    (f"postgresql://alice:{SECRET}@PW@h/db", "postgresql://alice:***@h/db"),
    (f"postgresql://alice:{SECRET}:more@h/db", "postgresql://alice:***@h/db"),
    (f"postgresql://alice:{SECRET}%40x%2Fy@h/db", "postgresql://alice:***@h/db"),
    (f"postgresql://alice%3A{SECRET}@h/db", "postgresql://alice:***@h/db"),
    (f"postgresql://alice@h/db?password={SECRET}", "postgresql://alice@h/db?password=***"),
    (f"postgresql://h/db?sslmode=require&PASSWORD={SECRET}", "postgresql://h/db?sslmode=require&PASSWORD=***"),
    (f"mysql://u@h/db?auth_token={SECRET}&x=1", "mysql://u@h/db?auth_token=***&x=1"),
    (f"ssh://pi:{SECRET}@board", "ssh://pi:***@board"),
    (f"ssh://pi@[::1]:22?key={SECRET}", "ssh://pi@[::1]:22?key=***"),
]
UNPARSEABLE = [f"postgresql://alice:{SECRET[:4]}/{SECRET[4:]}@h/db", f"postgresql://alice:{SECRET}@h:notaport/db",
               f"postgresql://alice:{SECRET}@[h/db"]


@pytest.mark.parametrize("url,shown", FORMS)
def test_every_form_of_password_is_masked(url, shown):
    assert urls.mask(url) == shown
    assert urls.has_password(url)
    text = f"could not connect to {url} (password authentication failed for {SECRET!r})"
    out = urls.scrub(text, url)
    assert SECRET not in out and SECRET.lower() not in out.lower(), out


@pytest.mark.parametrize("url", UNPARSEABLE)
def test_a_url_the_parser_refuses_is_shown_as_its_scheme_only(url):
    assert urls.mask(url) == "postgresql://<not shown: not a valid URL>"
    assert SECRET[:4] not in urls.scrub(f"error at {url}", url) and urls.has_password(url)


@pytest.mark.parametrize("url", ["postgresql://alice@h/db", "ssh://pi@board:22", "sqlite:////tmp/x.db",
                                 "ssh://user@host[:port]"])
def test_a_url_without_a_secret_is_left_as_it_is(url):
    assert not urls.has_password(url) and urls.scrub(f"see {url}.") == f"see {url}." and urls.mask(url) == url


def _one_line(args) -> str:
    r = run_cli(args)
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("edgeopt: error: "), r.stderr
    assert SECRET not in r.output and "%40x" not in r.output, r.output
    return lines[0]


@pytest.mark.parametrize("url,_", FORMS + [(u, None) for u in UNPARSEABLE])
def test_tune_never_prints_a_storage_password(tmp_path, url, _):
    spec = write_spec(tmp_path / "tiny.yaml", "tiny", "text_cnn", TINY["text_cnn"])
    r = run_cli(["tune", str(spec), "--storage", url, "--out", str(tmp_path / "t"), "--dry-run", "--json"])
    assert SECRET not in r.output, r.output
    if r.exit_code == 0:  # a PostgreSQL URL: the plan shows it masked
        assert json.loads(r.stdout)["storage"] == urls.mask(url)
    else:
        assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("url,_", FORMS + [(u, None) for u in UNPARSEABLE])
def test_a_target_files_board_url_with_a_password_is_refused_unseen(tmp_path, url, _):
    t = tmp_path / "mine.yaml"
    base = run_cli(["targets", "show", "pixel-7"]).stdout.replace("name: pixel-7", "name: mine")
    t.write_text(base.replace("  remote: null", f"  remote: {{url: '{url}', key_file: k}}"))
    for args in (["targets", "check", str(t)], ["build", "banking77-cnn", "-t", str(t), "--dry-run"],
                 ["bench", str(t), "--target", str(t), "--on-device"]):
        assert "device.remote.url" in _one_line(args) or "bench" in args


@pytest.mark.parametrize("storage,why", [
    ("mysql://u@h/db", "not a study storage"), ("redis://h:6379/0", "not a study storage"),
    ("file:///tmp/x", "not a study storage"), ("journal:///tmp/x", "not a study storage"),
    ("study", "not a database URL"), ("sqlite:///relative/x.db", "absolute path"),
    ("sqlite:///../../x.db", "absolute path"), ("sqlite://", "absolute path"), ("sqlite:///:memory:", "absolute path"),
    ("sqlite:////no/such/dir/x.db", "does not exist")])
def test_storage_refused_at_dry_run(tmp_path, storage, why):
    spec = write_spec(tmp_path / "tiny.yaml", "tiny", "text_cnn", TINY["text_cnn"])
    assert why in _one_line(["tune", str(spec), "--storage", storage, "--out", str(tmp_path / "t"), "--dry-run"])
    assert not (tmp_path / "t").exists()


def test_storage_never_adds_tables_to_someone_elses_database(tmp_path):
    spec = write_spec(tmp_path / "tiny.yaml", "tiny", "text_cnn", TINY["text_cnn"])
    theirs = tmp_path / "important.db"
    con = sqlite3.connect(theirs)
    con.execute("CREATE TABLE accounts (id INTEGER, owner TEXT)")
    con.execute("INSERT INTO accounts VALUES (1, 'alice')")
    con.commit()
    con.close()
    before = theirs.read_bytes()
    for dry in (["--dry-run"], []):
        msg = _one_line(["tune", str(spec), "--storage", f"sqlite:///{theirs}", "--out", str(tmp_path / "t"), *dry])
        assert "not an Optuna study storage" in msg
    assert theirs.read_bytes() == before and not (tmp_path / "t").exists()
    text = tmp_path / "notes.db"
    text.write_text("my notes, not a database\n" * 100)
    assert "not a SQLite database" in _one_line(["tune", str(spec), "--storage", f"sqlite:///{text}", "--dry-run"])
    assert text.read_text().startswith("my notes")
    # an Optuna storage of another tune: refused; of this one (or a new file): accepted
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    other = tmp_path / "other.db"
    optuna.create_study(study_name="someone-else@pixel-7", storage=f"sqlite:///{other}")
    assert "holds other studies" in _one_line(["tune", str(spec), "--storage", f"sqlite:///{other}", "--dry-run"])
    assert run_cli(["tune", str(spec), "--storage", f"sqlite:///{other}", "--study", "someone-else@pixel-7",
                    "--dry-run"]).exit_code == 0
    assert run_cli(["tune", str(spec), "--storage", f"sqlite:///{tmp_path / 'new.db'}", "--dry-run"]).exit_code == 0
    assert not (tmp_path / "new.db").exists()
