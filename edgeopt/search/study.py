"""The study behind a tune, kept by Optuna: a SQLite file in the tune directory by default, a PostgreSQL database
when several workers share it (``--storage postgresql://...``). Optuna's RDB storage gives transactions (a process
killed at any point leaves the study readable), heartbeats (a worker that died mid-trial is noticed by the others
and its trial retried) and ``load_if_exists`` (workers on many machines join one study).

What Optuna does not do, and this module does: refuse to mix studies of another model or target; re-queue, on
``--resume``, the trials a killed single worker left running or an interrupt left failed; never print a storage
URL's password.
"""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Optional

from .. import urls
from ..errors import InputError

STUDY_FILE = "study.db"
HEARTBEAT_S = 20  # a worker's running trial beats this often; one silent for 3x this long is stale
OUTCOME = "outcome"  # user attribute of a trial that finished by edgeopt's hand (not interrupted, not stale)


def storage_url(storage: Optional[str], tune_dir: Path, study: Optional[str] = None) -> str:
    """The study storage's URL, checked before anything is opened or written (``--dry-run`` too): PostgreSQL, or
    SQLite at an absolute path that edgeopt creates or that already holds this tune's Optuna study (never tables
    added to a database of someone else's). Parsed by SQLAlchemy's ``make_url``."""
    if storage is None:
        return f"sqlite:///{(tune_dir / STUDY_FILE).resolve()}"
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    fix = ("Fix: give a PostgreSQL URL, postgresql://user@host:5432/database, the password in it or in PGPASSWORD "
           "(shared by workers), sqlite:////absolute/path/new.db, or leave --storage out (a file in the tune "
           "directory).")
    try:
        u = make_url(storage)
    except (ArgumentError, ValueError, TypeError):
        raise InputError(f"--storage {urls.mask(storage)!r}: not a database URL. {fix}") from None
    if u.drivername not in ("postgresql", "postgresql+psycopg2", "sqlite"):
        raise InputError(f"--storage {urls.mask(storage)!r}: {u.drivername} is not a study storage edgeopt uses. {fix}")
    if u.drivername == "sqlite":
        _check_sqlite(storage, u.database, study)
    return storage


def _check_sqlite(storage: str, database: Optional[str], study: Optional[str]) -> None:
    """An absolute path; a new file in an existing directory, or an Optuna storage holding no study but ``study``."""
    import sqlite3

    where = f"--storage {urls.mask(storage)!r}"
    if not database or database == ":memory:" or not Path(database).is_absolute():
        raise InputError(f"{where}: a SQLite study needs an absolute path (a relative one is taken from wherever "
                         f"edgeopt runs). Fix: write sqlite:////absolute/path/study.db, or leave --storage out.")
    p = Path(database)
    if not p.exists():
        if not p.parent.is_dir():
            raise InputError(f"{where}: directory {p.parent} does not exist; edgeopt creates the file, not its "
                             f"directory. Fix: create the directory, or leave --storage out.")
        return
    if not p.is_file():
        raise InputError(f"{where}: {p} is not a regular file. Fix: give a new file's path.")
    if p.stat().st_size == 0:
        return  # what another worker's first connect leaves before Optuna's tables
    try:
        con = sqlite3.connect(f"file:{p}?mode=ro", uri=True, timeout=30)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            names = ({r[0] for r in con.execute("SELECT study_name FROM studies")}
                     if {"studies", "version_info"} <= tables else None)
        finally:
            con.close()
    except sqlite3.Error as e:
        raise InputError(f"{where}: {p} is not a SQLite database ({e}); edgeopt will not write into it. Fix: give a "
                         f"new file's path.") from None
    if names is None:
        raise InputError(f"{where}: {p} is a SQLite database but not an Optuna study storage; edgeopt will not add "
                         f"its tables to it. Fix: give a new file's path, or leave --storage out.")
    others = sorted(names - {study})
    if others:
        raise InputError(f"{where}: {p} holds other studies ({', '.join(others[:3])}) and not only this tune's "
                         f"({study}). Fix: give a new file's path, --study with one of those names to continue it, "
                         f"or leave --storage out.")


def _driver(url: str) -> str:
    """SQLAlchemy 2.1 reads a bare postgresql:// as the psycopg (3) driver; edgeopt ships psycopg2."""
    return "postgresql+psycopg2://" + url[len("postgresql://"):] if url.startswith("postgresql://") else url


def open_storage(url: str):
    import warnings

    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # edgeopt logs each trial's outcome in one line itself
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats: stable in use
    kw = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    for attempt in range(6):
        try:
            return RDBStorage(_driver(url), engine_kwargs=kw, heartbeat_interval=HEARTBEAT_S,
                              grace_period=3 * HEARTBEAT_S,
                              heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=2))
        except Exception as e:  # sqlalchemy's OperationalError etc.: one line, without the password
            err = e
            # workers starting together on an empty database race to create Optuna's tables: the loser retries
            if attempt < 5 and re.search(r"UniqueViolation|already exists|duplicate key", str(e)):
                time.sleep(1 + attempt)
                continue
            break
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    raise InputError(f"--storage {urls.mask(url)}: cannot open the study storage ({urls.scrub(first, url)[:200]}). Fix: "
                     f"check the server is running and the URL's user, password and database.") from None


def open_study(storage, name: str, identity: dict, sampler, resume: bool, shared: bool):
    """Create the study, or join it (shared storage) / continue it (``--resume``). ``identity`` (model, target,
    space) must match an existing study's."""
    import optuna

    names = {s.study_name for s in optuna.study.get_all_study_summaries(storage, include_best_trial=False)}
    exists = name in names
    if exists and not (resume or shared):
        raise InputError(f"study {name!r} already exists in this tune directory. Fix: add --resume to continue it, "
                         f"or choose another --out.")
    if resume and not exists:
        raise InputError(f"--resume: there is no study {name!r} to resume. Fix: run without --resume to start it.")
    study = optuna.create_study(study_name=name, storage=storage, sampler=sampler, load_if_exists=True,
                                directions=["maximize", "minimize", "minimize"])
    have = study.user_attrs.get("edgeopt")
    if have is None:
        study.set_user_attr("edgeopt", identity)
    elif {k: have.get(k) for k in identity} != identity:
        diff = [k for k in identity if have.get(k) != identity[k]]
        raise InputError(f"study {name!r} was made for another {', '.join(diff)} ({', '.join(str(have.get(k)) for k in diff)}"
                         f"). Fix: give another --study name (or --out), or tune what the study was made for.")
    return study


def requeue_interrupted(study, single_worker: bool) -> int:
    """Give back to the queue what a killed or interrupted worker left: trials left RUNNING (only when this is
    the only worker: a file study under its lock) and trials that failed without an outcome (an interrupt), unless
    the same candidate was finished by another trial. Returns how many were re-queued."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    done = {_key(t) for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
            or (t.state == TrialState.FAIL and OUTCOME in t.user_attrs)}
    waiting = {_key(t) for t in trials if t.state == TrialState.WAITING}
    n = 0
    for t in trials:
        stale = t.state == TrialState.RUNNING and single_worker
        interrupted = t.state == TrialState.FAIL and OUTCOME not in t.user_attrs and t.params
        if not (stale or interrupted):
            continue
        if stale:
            study._storage.set_trial_user_attr(t._trial_id, "left", "killed while running; re-queued by --resume")
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        k = _key(t)
        if k and k not in done and k not in waiting:
            keep = {k: t.user_attrs[k] for k in ("training",) if k in t.user_attrs}
            study.enqueue_trial(t.params, user_attrs={**keep, "requeued_from": t.number})
            waiting.add(k)
            n += 1
    return n


def _key(t) -> tuple:
    return tuple(sorted(t.params.items())) if t.params else tuple(sorted(t.system_attrs.get("fixed_params", {})
                                                                         .items()))


def finished(study) -> int:
    """Trials that count against the budget: candidates finished by edgeopt (evaluated, stopped early, or refused).
    A trial that met a candidate already tried (the sampler proposed it again, or two workers queued the grid at
    once) reuses that result and does not count."""
    from optuna.trial import TrialState

    return sum(1 for t in study.get_trials(deepcopy=False) if "duplicate_of" not in t.user_attrs and (
        t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (t.state == TrialState.FAIL and OUTCOME in t.user_attrs)))
