"""The TrailStore half of both SQL backends: trails, selectors, history jobs, organizations.

Written once over ``self.dialect`` and three primitives of the backend: ``_read``, ``_write`` and
``_write_transaction`` (one write transaction, serialised against other trail writes, whose statements
see each other). Limits are checked inside the transaction that writes, so they hold across nodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from ...model.trail import (
    DataEventSelector,
    EventRW,
    HistoryJob,
    HistoryJobStatus,
    Organization,
    Trail,
    TrailStatus,
)
from ..base import TrailConflict
from .dialect import Dialect

__all__ = ["ConnectionTx", "TrailSql", "Tx"]

Row = Sequence[Any]

_TRAIL_COLUMNS = (
    "account_id, name, home_region, trail_region, event_rw, status, oss_bucket_name,"
    " oss_bucket_location, oss_key_prefix, oss_write_role_arn, sls_project_arn, sls_write_role_arn,"
    " max_compute_project_arn, max_compute_write_role_arn, role_name, mns_topic_arn,"
    " is_organization_trail, organization_id, create_ms, update_ms, start_logging_ms, stop_logging_ms"
)
_SELECTOR_COLUMNS = (
    "account_id, trail_name, event_selectors, is_trail_all_region, trail_region_ids, create_ms, update_ms"
)
_JOB_COLUMNS = (
    "job_id, account_id, trail_name, home_region, status, window_start_ms, window_end_ms, client_token,"
    " created_ms, updated_ms, started_ms, finished_ms, checkpoint, error"
)
_OPEN = (int(HistoryJobStatus.INITIALIZING), int(HistoryJobStatus.DELIVERING))
_NUL = "\x00"  # PostgreSQL text cannot hold it, so no stored name has one


class Tx(Protocol):
    """One open write transaction."""

    def fetch(self, query: str, params: Sequence[object] = ()) -> list[Any]: ...
    def run(self, query: str, params: Sequence[object] = ()) -> int: ...


class ConnectionTx:
    """``Tx`` over a DB-API connection inside its open transaction (both drivers' ``execute``)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def fetch(self, query: str, params: Sequence[object] = ()) -> list[Any]:
        return list(self._conn.execute(query, params).fetchall())

    def run(self, query: str, params: Sequence[object] = ()) -> int:
        return int(self._conn.execute(query, params).rowcount)


def _opt(value: Any) -> int | None:
    return None if value is None else int(value)


def trail_from_row(row: Row) -> Trail:
    return Trail(
        account_id=str(row[0]),
        name=str(row[1]),
        home_region=str(row[2]),
        trail_region=str(row[3]),
        event_rw=EventRW(row[4]),
        status=TrailStatus(row[5]),
        oss_bucket_name=str(row[6]),
        oss_bucket_location=str(row[7]),
        oss_key_prefix=str(row[8]),
        oss_write_role_arn=str(row[9]),
        sls_project_arn=str(row[10]),
        sls_write_role_arn=str(row[11]),
        max_compute_project_arn=str(row[12]),
        max_compute_write_role_arn=str(row[13]),
        role_name=str(row[14]),
        mns_topic_arn=str(row[15]),
        is_organization_trail=bool(row[16]),
        organization_id=str(row[17]),
        create_ms=int(row[18]),
        update_ms=int(row[19]),
        start_logging_ms=_opt(row[20]),
        stop_logging_ms=_opt(row[21]),
    )


def selector_from_row(row: Row) -> DataEventSelector:
    return DataEventSelector(
        account_id=str(row[0]),
        trail_name=str(row[1]),
        event_selectors=str(row[2]),
        is_trail_all_region=bool(row[3]),
        trail_region_ids=tuple(r for r in str(row[4]).split(",") if r),
        create_ms=int(row[5]),
        update_ms=int(row[6]),
    )


def job_from_row(row: Row) -> HistoryJob:
    return HistoryJob(
        job_id=int(row[0]),
        account_id=str(row[1]),
        trail_name=str(row[2]),
        home_region=str(row[3]),
        status=HistoryJobStatus(int(row[4])),
        window_start_ms=int(row[5]),
        window_end_ms=int(row[6]),
        client_token=str(row[7]),
        created_ms=int(row[8]),
        updated_ms=int(row[9]),
        started_ms=_opt(row[10]),
        finished_ms=_opt(row[11]),
        checkpoint=str(row[12]),
        error=str(row[13]),
    )


class TrailSql:
    """TrailStore over SQL; mixed into ``SqlStore``."""

    dialect: Dialect

    # -- primitives a backend provides ---------------------------------------------------------
    def _guard(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def _read(self, query: str, params: Sequence[object] = ()) -> list[Any]:
        raise NotImplementedError

    def _write(self, query: str, params: Sequence[object]) -> int:
        raise NotImplementedError

    def _write_transaction(self) -> AbstractContextManager[Tx]:
        """A write transaction serialised against every other one that calls this. On a closed store
        it fails with an error ``_guard`` translates (SQLite's closed writer raises ProgrammingError)."""
        raise NotImplementedError

    # -- trails --------------------------------------------------------------------------------
    def _trail_values(self, t: Trail) -> tuple[object, ...]:
        return (
            t.account_id,
            t.name,
            t.home_region,
            t.trail_region,
            t.event_rw.value,
            t.status.value,
            t.oss_bucket_name,
            t.oss_bucket_location,
            t.oss_key_prefix,
            t.oss_write_role_arn,
            t.sls_project_arn,
            t.sls_write_role_arn,
            t.max_compute_project_arn,
            t.max_compute_write_role_arn,
            t.role_name,
            t.mns_topic_arn,
            self.dialect.flag(t.is_organization_trail),
            t.organization_id,
            t.create_ms,
            t.update_ms,
            t.start_logging_ms,
            t.stop_logging_ms,
        )

    def _bucket_taken(self, tx: Tx, trail: Trail) -> bool:
        if not trail.oss_bucket_name:
            return False
        ph = self.dialect.ph
        return bool(
            tx.fetch(
                f"SELECT 1 FROM trails WHERE oss_bucket_name = {ph}"
                f" AND NOT (account_id = {ph} AND name = {ph})",
                (trail.oss_bucket_name, trail.account_id, trail.name),
            )
        )

    def create_trail(
        self, trail: Trail, *, max_per_region: int, max_organization: int
    ) -> TrailConflict | None:
        ph = self.dialect.ph
        with self._guard(), self._write_transaction() as tx:
            if tx.fetch(
                f"SELECT 1 FROM trails WHERE account_id = {ph} AND name = {ph}",
                (trail.account_id, trail.name),
            ):
                return TrailConflict.NAME_TAKEN
            ((in_region,),) = tx.fetch(
                f"SELECT count(*) FROM trails WHERE account_id = {ph} AND home_region = {ph}",
                (trail.account_id, trail.home_region),
            )
            if int(in_region) >= max_per_region:
                return TrailConflict.REGION_FULL
            if trail.is_organization_trail:
                ((organization_trails,),) = tx.fetch(
                    f"SELECT count(*) FROM trails WHERE account_id = {ph} AND is_organization_trail = {ph}",
                    (trail.account_id, self.dialect.flag(True)),
                )
                if int(organization_trails) >= max_organization:
                    return TrailConflict.ORGANIZATION_FULL
            if self._bucket_taken(tx, trail):
                return TrailConflict.BUCKET_TAKEN
            tx.run(
                f"INSERT INTO trails ({_TRAIL_COLUMNS}) VALUES ({self.dialect.marks(22)})",
                self._trail_values(trail),
            )
        return None

    def get_trail(self, *, account_id: str, name: str) -> Trail | None:
        if _NUL in account_id + name:
            return None
        ph = self.dialect.ph
        with self._guard():
            rows = self._read(
                f"SELECT {_TRAIL_COLUMNS} FROM trails WHERE account_id = {ph} AND name = {ph}",
                (account_id, name),
            )
        return trail_from_row(rows[0]) if rows else None

    def list_trails(self, *, account_id: str) -> list[Trail]:
        if _NUL in account_id:
            return []
        with self._guard():
            rows = self._read(
                f"SELECT {_TRAIL_COLUMNS} FROM trails WHERE account_id = {self.dialect.ph} ORDER BY name",
                (account_id,),
            )
        return [trail_from_row(r) for r in rows]

    def list_all_trails(self) -> list[Trail]:
        with self._guard():
            rows = self._read(f"SELECT {_TRAIL_COLUMNS} FROM trails ORDER BY account_id, name")
        return [trail_from_row(r) for r in rows]

    def update_trail(self, trail: Trail) -> TrailConflict | None:
        ph = self.dialect.ph
        columns = [c.strip() for c in _TRAIL_COLUMNS.split(",")][2:]
        values = self._trail_values(trail)[2:]
        with self._guard(), self._write_transaction() as tx:
            if not tx.fetch(
                f"SELECT 1 FROM trails WHERE account_id = {ph} AND name = {ph}",
                (trail.account_id, trail.name),
            ):
                return TrailConflict.NOT_FOUND
            if self._bucket_taken(tx, trail):
                return TrailConflict.BUCKET_TAKEN
            tx.run(
                f"UPDATE trails SET {', '.join(f'{c} = {ph}' for c in columns)}"
                f" WHERE account_id = {ph} AND name = {ph}",
                (*values, trail.account_id, trail.name),
            )
        return None

    def delete_trail(self, *, account_id: str, name: str) -> bool:
        if _NUL in account_id + name:
            return False
        ph = self.dialect.ph
        with self._guard(), self._write_transaction() as tx:
            for table in ("data_event_selectors", "insight_selectors"):
                tx.run(
                    f"DELETE FROM {table} WHERE account_id = {ph} AND trail_name = {ph}", (account_id, name)
                )
            return (
                tx.run(f"DELETE FROM trails WHERE account_id = {ph} AND name = {ph}", (account_id, name)) > 0
            )

    # -- data event selectors ------------------------------------------------------------------
    def put_data_event_selector(self, selector: DataEventSelector) -> bool:
        ph = self.dialect.ph
        key = (selector.account_id, selector.trail_name)
        with self._guard(), self._write_transaction() as tx:
            if not tx.fetch(f"SELECT 1 FROM trails WHERE account_id = {ph} AND name = {ph}", key):
                return False
            existing = tx.fetch(
                f"SELECT create_ms FROM data_event_selectors WHERE account_id = {ph} AND trail_name = {ph}",
                key,
            )
            created = int(existing[0][0]) if existing else selector.create_ms
            tx.run(f"DELETE FROM data_event_selectors WHERE account_id = {ph} AND trail_name = {ph}", key)
            tx.run(
                f"INSERT INTO data_event_selectors ({_SELECTOR_COLUMNS}) VALUES ({self.dialect.marks(7)})",
                (
                    *key,
                    selector.event_selectors,
                    self.dialect.flag(selector.is_trail_all_region),
                    ",".join(selector.trail_region_ids),
                    created,
                    selector.update_ms,
                ),
            )
        return True

    def get_data_event_selector(self, *, account_id: str, trail_name: str) -> DataEventSelector | None:
        if _NUL in account_id + trail_name:
            return None
        ph = self.dialect.ph
        with self._guard():
            rows = self._read(
                f"SELECT {_SELECTOR_COLUMNS} FROM data_event_selectors"
                f" WHERE account_id = {ph} AND trail_name = {ph}",
                (account_id, trail_name),
            )
        return selector_from_row(rows[0]) if rows else None

    def list_data_event_selectors(self, *, account_id: str) -> list[DataEventSelector]:
        if _NUL in account_id:
            return []
        with self._guard():
            rows = self._read(
                f"SELECT {_SELECTOR_COLUMNS} FROM data_event_selectors WHERE account_id = {self.dialect.ph}"
                " ORDER BY trail_name",
                (account_id,),
            )
        return [selector_from_row(r) for r in rows]

    def delete_data_event_selector(self, *, account_id: str, trail_name: str) -> bool:
        if _NUL in account_id + trail_name:
            return False
        ph = self.dialect.ph
        with self._guard():
            return (
                self._write(
                    f"DELETE FROM data_event_selectors WHERE account_id = {ph} AND trail_name = {ph}",
                    (account_id, trail_name),
                )
                > 0
            )

    # -- delivery-history jobs -----------------------------------------------------------------
    def create_history_job(self, job: HistoryJob, *, max_open_per_account: int) -> HistoryJob | None:
        ph = self.dialect.ph
        columns = _JOB_COLUMNS.split(",", 1)[1]
        with self._guard(), self._write_transaction() as tx:
            if job.client_token:
                same = tx.fetch(
                    f"SELECT {_JOB_COLUMNS} FROM history_jobs"
                    f" WHERE account_id = {ph} AND client_token = {ph}",
                    (job.account_id, job.client_token),
                )
                if same:
                    return job_from_row(same[0])
            ((open_jobs,),) = tx.fetch(
                f"SELECT count(*) FROM history_jobs WHERE account_id = {ph} AND status IN ({ph}, {ph})",
                (job.account_id, *_OPEN),
            )
            if int(open_jobs) >= max_open_per_account:
                return None
            ((job_id,),) = tx.fetch(
                f"INSERT INTO history_jobs ({columns}) VALUES ({self.dialect.marks(13)}) RETURNING job_id",
                self._job_values(job),
            )
        return job_from_row((job_id, *self._job_values(job)))

    @staticmethod
    def _job_values(job: HistoryJob) -> tuple[object, ...]:
        return (
            job.account_id,
            job.trail_name,
            job.home_region,
            int(job.status),
            job.window_start_ms,
            job.window_end_ms,
            job.client_token,
            job.created_ms,
            job.updated_ms,
            job.started_ms,
            job.finished_ms,
            job.checkpoint,
            job.error,
        )

    def get_history_job(self, *, account_id: str, job_id: int) -> HistoryJob | None:
        if _NUL in account_id:
            return None
        ph = self.dialect.ph
        with self._guard():
            rows = self._read(
                f"SELECT {_JOB_COLUMNS} FROM history_jobs WHERE account_id = {ph} AND job_id = {ph}",
                (account_id, job_id),
            )
        return job_from_row(rows[0]) if rows else None

    def list_history_jobs(self, *, account_id: str, offset: int, limit: int) -> tuple[list[HistoryJob], int]:
        if _NUL in account_id:
            return [], 0
        ph = self.dialect.ph
        with self._guard():
            ((total,),) = self._read(
                f"SELECT count(*) FROM history_jobs WHERE account_id = {ph}", (account_id,)
            )
            rows = self._read(
                f"SELECT {_JOB_COLUMNS} FROM history_jobs WHERE account_id = {ph}"
                f" ORDER BY job_id DESC LIMIT {ph} OFFSET {ph}",
                (account_id, limit, offset),
            )
        return [job_from_row(r) for r in rows], int(total)

    def delete_history_job(self, *, account_id: str, job_id: int) -> bool:
        if _NUL in account_id:
            return False
        ph = self.dialect.ph
        with self._guard():
            return (
                self._write(
                    f"DELETE FROM history_jobs WHERE account_id = {ph} AND job_id = {ph}",
                    (account_id, job_id),
                )
                > 0
            )

    def list_open_history_jobs(self) -> list[HistoryJob]:
        ph = self.dialect.ph
        with self._guard():
            rows = self._read(
                f"SELECT {_JOB_COLUMNS} FROM history_jobs WHERE status IN ({ph}, {ph}) ORDER BY job_id", _OPEN
            )
        return [job_from_row(r) for r in rows]

    def update_history_job(self, job: HistoryJob) -> bool:
        ph = self.dialect.ph
        with self._guard():
            return (
                self._write(
                    f"UPDATE history_jobs SET status = {ph}, updated_ms = {ph}, started_ms = {ph},"
                    f" finished_ms = {ph}, checkpoint = {ph}, error = {ph}"
                    f" WHERE account_id = {ph} AND job_id = {ph}",
                    (
                        int(job.status),
                        job.updated_ms,
                        job.started_ms,
                        job.finished_ms,
                        job.checkpoint,
                        job.error,
                        job.account_id,
                        job.job_id,
                    ),
                )
                > 0
            )

    # -- organizations -------------------------------------------------------------------------
    def _organization(self, fetch: Any, management_account_id: str) -> Organization | None:
        ph = self.dialect.ph
        rows = fetch(
            f"SELECT organization_id, created_ms FROM organizations WHERE management_account_id = {ph}",
            (management_account_id,),
        )
        if not rows:
            return None
        members = fetch(
            f"SELECT member_account_id FROM organization_members WHERE management_account_id = {ph}"
            " ORDER BY member_account_id",
            (management_account_id,),
        )
        return Organization(
            str(rows[0][0]), management_account_id, tuple(str(m) for (m,) in members), int(rows[0][1])
        )

    def add_organization_member(
        self, *, management_account_id: str, member_account_id: str, organization_id: str, now_ms: int
    ) -> Organization:
        ph = self.dialect.ph
        with self._guard(), self._write_transaction() as tx:
            if not tx.fetch(
                f"SELECT 1 FROM organizations WHERE management_account_id = {ph}", (management_account_id,)
            ):
                tx.run(
                    f"INSERT INTO organizations VALUES ({ph}, {ph}, {ph})",
                    (management_account_id, organization_id, now_ms),
                )
            tx.run(
                f"INSERT INTO organization_members VALUES ({ph}, {ph}, {ph})",
                (member_account_id, management_account_id, now_ms),
            )
            organization = self._organization(tx.fetch, management_account_id)
        assert organization is not None
        return organization

    def remove_organization_member(self, *, management_account_id: str, member_account_id: str) -> bool:
        ph = self.dialect.ph
        with self._guard():
            return (
                self._write(
                    "DELETE FROM organization_members"
                    f" WHERE management_account_id = {ph} AND member_account_id = {ph}",
                    (management_account_id, member_account_id),
                )
                > 0
            )

    def delete_organization(self, *, management_account_id: str) -> bool:
        ph = self.dialect.ph
        with self._guard(), self._write_transaction() as tx:
            tx.run(
                f"DELETE FROM organization_members WHERE management_account_id = {ph}",
                (management_account_id,),
            )
            return (
                tx.run(
                    f"DELETE FROM organizations WHERE management_account_id = {ph}", (management_account_id,)
                )
                > 0
            )

    def organization_of(self, account_id: str) -> Organization | None:
        if _NUL in account_id:
            return None
        ph = self.dialect.ph
        with self._guard():
            found = self._organization(self._read, account_id)
            if found is not None:
                return found
            rows = self._read(
                f"SELECT management_account_id FROM organization_members WHERE member_account_id = {ph}",
                (account_id,),
            )
            return self._organization(self._read, str(rows[0][0])) if rows else None

    def list_organizations(self) -> list[Organization]:
        with self._guard():
            managers = self._read(
                "SELECT management_account_id FROM organizations ORDER BY management_account_id"
            )
            found = [self._organization(self._read, str(m)) for (m,) in managers]
        return [o for o in found if o is not None]

    # -- account settings ----------------------------------------------------------------------
    def get_account_setting(self, *, account_id: str, name: str) -> str | None:
        if _NUL in account_id:
            return None
        ph = self.dialect.ph
        with self._guard():
            rows = self._read(
                f"SELECT value FROM account_settings WHERE account_id = {ph} AND name = {ph}",
                (account_id, name),
            )
        return str(rows[0][0]) if rows else None

    def set_account_setting(self, *, account_id: str, name: str, value: str) -> None:
        ph = self.dialect.ph
        with self._guard(), self._write_transaction() as tx:
            tx.run(
                f"DELETE FROM account_settings WHERE account_id = {ph} AND name = {ph}", (account_id, name)
            )
            tx.run(f"INSERT INTO account_settings VALUES ({ph}, {ph}, {ph})", (account_id, name, value))
