"""The query layer's generic base: every domain's ``repository.py`` builds on it.

A repository holds every statement of its domain, bound to one session (one transaction). What each of them
needs and would otherwise write again lives here:

- :meth:`Repository.get` / :meth:`Repository.get_or_raise`: one row of this shop by id, or the domain's 404
  (a row of another shop is never found: tenant isolation is part of the lookup, not of the caller);
- :meth:`Repository.paginate`: a keyset page (see :mod:`liveloop.kit.pagination`);
- :meth:`Repository.changed`: how many rows an ``UPDATE``/``DELETE`` touched, typed (the ``rowcount`` of an
  executed DML statement, which ``AsyncSession.execute`` types as a plain ``Result``);
- :meth:`Repository.locked` / :attr:`Repository.locks`: ``SELECT … FOR UPDATE`` on PostgreSQL, nothing on SQLite
  (which already runs one writer at a time, and has no such clause), decided in this one place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Generic, Protocol, TypeVar, cast

from sqlalchemy import CursorResult, Executable, Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from liveloop.kit.errors import NotFound
from liveloop.kit.pagination import PageRequest, paginate

S = TypeVar("S", bound=Select[*tuple[Any, ...]])


class ShopOwned(Protocol):
    """A row that belongs to one shop and has a string id: what :meth:`Repository.get` looks up."""

    id: Any
    shop_id: Any


ModelT = TypeVar("ModelT", bound=ShopOwned)


def locks(session: AsyncSession) -> bool:
    """Whether ``SELECT … FOR UPDATE`` means anything on this session's database (PostgreSQL, not SQLite)."""
    return session.bind is not None and session.bind.dialect.name == "postgresql"


def locked(session: AsyncSession, query: S, *, skip_locked: bool = False) -> S:
    """``query … FOR UPDATE [SKIP LOCKED]`` where the database has row locks; ``query`` unchanged on SQLite."""
    if not locks(session):
        return query
    return query.with_for_update(skip_locked=skip_locked)


async def changed(session: AsyncSession, statement: Executable, params: Any = None) -> int:
    """Run an ``UPDATE``/``DELETE``/``INSERT … ON CONFLICT DO NOTHING`` and return how many rows it touched."""
    result = await session.execute(statement, params)
    return cast(CursorResult[Any], result).rowcount


class Repository(Generic[ModelT]):
    """Statements about one model (and what hangs off it), within one session.

    A subclass names its model and the error a missing row answers with::

        class CouponRepository(Repository[Coupon]):
            model = Coupon
            not_found = ("coupon_not_found", "No such coupon in this shop.")
    """

    model: ClassVar[type[Any]]
    not_found: ClassVar[tuple[str, str]] = ("not_found", "No such record in this shop.")

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- locking and counting, for this repository's session -------------------------------------------------
    @property
    def locks(self) -> bool:
        return locks(self.session)

    def locked(self, query: S, *, skip_locked: bool = False) -> S:
        return locked(self.session, query, skip_locked=skip_locked)

    async def changed(self, statement: Executable, params: Any = None) -> int:
        return await changed(self.session, statement, params)

    # -- reading -------------------------------------------------------------------------------------------------
    def _column(self, name: str) -> InstrumentedAttribute[Any]:
        return cast(InstrumentedAttribute[Any], getattr(self.model, name))

    def scoped(self, shop_id: str) -> Select[ModelT]:
        """``SELECT model WHERE shop_id = :shop_id``: the start of every query about one shop's rows."""
        return select(self.model).where(self._column("shop_id") == shop_id)

    async def one_or_none(self, query: Select[ModelT], params: Any = None) -> ModelT | None:
        result = await self.session.execute(query, params)
        return result.scalar_one_or_none()

    async def all(self, query: Select[ModelT], params: Any = None) -> list[ModelT]:
        return list((await self.session.execute(query, params)).scalars().all())

    async def get(self, shop_id: str, id_: str, *, lock: bool = False) -> ModelT | None:
        """This shop's row with this id (``FOR UPDATE`` on PostgreSQL when ``lock``), or None."""
        query = self.scoped(shop_id).where(self._column("id") == id_)
        return await self.one_or_none(self.locked(query) if lock else query)

    async def get_or_raise(self, shop_id: str, id_: str, *, lock: bool = False) -> ModelT:
        """This shop's row with this id, or the repository's 404 (the same answer for another shop's id)."""
        row = await self.get(shop_id, id_, lock=lock)
        if row is None:
            raise self.missing()
        return row

    def missing(self) -> NotFound:
        code, message = self.not_found
        return NotFound(message, code=code)

    async def paginate(
        self,
        query: Select[*tuple[Any, ...]],
        page: PageRequest,
        key: Sequence[InstrumentedAttribute[Any]],
        *,
        descending: bool = False,
        row_key: Callable[[Any], Sequence[Any]] | None = None,
    ) -> tuple[list[Any], str | None]:
        """One keyset page of ``query`` and the next page's cursor (see :func:`liveloop.kit.pagination.paginate`)."""
        return await paginate(self.session, query, page, key, descending=descending, row_key=row_key)

    # -- writing -------------------------------------------------------------------------------------------------
    async def add(self, row: ModelT, *, flush: bool = True) -> ModelT:
        self.session.add(row)
        if flush:
            await self.session.flush()
        return row
