"""The live room's services and repository, called directly: lookups per shop, statuses as enums, conditional
updates, the counters and viewers the gateway writes in batches."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from liveloop.kit.db import transaction
from liveloop.kit.errors import NotFound, Unprocessable
from liveloop.kit.time import utc_now
from liveloop.live import cohost, interactions, repository, schemas, service
from liveloop.live.repository import InteractionRepository, ShowRepository
from liveloop.live.tokens import ViewerClaims
from liveloop.models import (
    CohostStatus,
    InteractionKind,
    InteractionStatus,
    RestrictionKind,
    Show,
    ShowStatus,
    ShowViewer,
    VideoProvider,
)
from tests.conftest import ShopCtx, make_shop


async def _live_show(shop: ShopCtx, title: str = "Autumn drop") -> Show:
    async with transaction(shop.app.state.sessions) as session:
        created = await service.create_show(
            session,
            shop.shop,
            schemas.ShowCreate(title=title, host_name="Mai", scheduled_at=utc_now() + timedelta(hours=1)),
        )
        return await service.start_show(session, created)


def _claims(show: Show, key: str = "d:dev1") -> ViewerClaims:
    return ViewerClaims(shop_id=show.shop_id, show_id=show.id, key=key, name="Ann", device_id=key[2:])


async def _poll(shop: ShopCtx, show: Show) -> str:
    async with transaction(shop.app.state.sessions) as session:
        poll = schemas.Poll(kind="poll", question="Next?", options=["Rose", "Sand"])
        return (await interactions.launch(session, show, poll)).id


async def test_another_shops_show_and_interaction_are_not_found_as_if_they_did_not_exist(shop: ShopCtx) -> None:
    other = await make_shop(shop.app, slug="rival")
    show = await _live_show(shop)
    poll_id = await _poll(shop, show)
    async with transaction(shop.app.state.sessions) as session:
        assert (await service.get_show(session, shop.shop.id, show.id)).id == show.id
        assert (await interactions.get(session, shop.shop.id, poll_id)).id == poll_id
        refusals = []
        for lookup in (
            service.get_show(session, other.shop.id, show.id),
            service.get_show(session, shop.shop.id, "shw_nosuchshow"),
            interactions.get(session, other.shop.id, poll_id),
            interactions.get(session, shop.shop.id, "ia_nosuchinteraction"),
        ):
            with pytest.raises(NotFound) as refused:
                await lookup
            refusals.append((refused.value.code, str(refused.value)))
    assert refusals == [
        ("show_not_found", "No such show in this shop."),
        ("show_not_found", "No such show in this shop."),
        ("interaction_not_found", "No such interaction in this shop."),
        ("interaction_not_found", "No such interaction in this shop."),
    ]


async def test_the_public_lookups_find_any_shops_show_and_answer_their_own_404(shop: ShopCtx) -> None:
    show = await _live_show(shop)
    async with transaction(shop.app.state.sessions) as session:
        assert (await ShowRepository(session).public_or_raise(show.id)).id == show.id
        with pytest.raises(NotFound) as no_show:
            await ShowRepository(session).public_or_raise("shw_nosuchshow")
        with pytest.raises(NotFound) as no_card:
            await InteractionRepository(session).public_or_raise("ia_nosuchinteraction")
    assert (no_show.value.code, str(no_show.value)) == ("show_not_found", "No such show.")
    assert (no_card.value.code, str(no_card.value)) == ("interaction_not_found", "No such interaction.")


async def test_statuses_and_kinds_read_back_as_enums(shop: ShopCtx) -> None:
    show = await _live_show(shop)
    poll_id = await _poll(shop, show)
    async with transaction(shop.app.state.sessions) as session:
        found = await service.get_show(session, shop.shop.id, show.id)
        poll = await interactions.get(session, shop.shop.id, poll_id)
        request = await cohost.ask(session, shop.shop.id, show.id, _claims(show))
    assert found.status is ShowStatus.LIVE
    assert found.video_provider is VideoProvider.NONE
    assert poll.kind is InteractionKind.POLL
    assert poll.status is InteractionStatus.OPEN
    assert request.status is CohostStatus.WAITING


async def test_a_co_host_request_of_another_show_is_not_found(shop: ShopCtx) -> None:
    show, other_show = await _live_show(shop), await _live_show(shop, "Winter drop")
    async with transaction(shop.app.state.sessions) as session:
        request = await cohost.ask(session, shop.shop.id, show.id, _claims(show))
    async with transaction(shop.app.state.sessions) as session:
        with pytest.raises(NotFound) as refused:
            await cohost.decide(session, other_show.id, request.id, approve=True, secret="s")
        decided = await cohost.decide(session, show.id, request.id, approve=True, secret="s")
    assert (refused.value.code, str(refused.value)) == (
        "cohost_request_not_found",
        "No such co-host request in this show.",
    )
    assert decided.status is CohostStatus.APPROVED


async def test_a_viewer_named_by_an_alias_nobody_has_is_not_found(shop: ShopCtx) -> None:
    show = await _live_show(shop)
    async with transaction(shop.app.state.sessions) as session:
        with pytest.raises(NotFound) as refused:
            await service.restriction_target(session, show, "secret", alias_="AAAAAAAAAAAA")
    assert refused.value.code == "viewer_not_found"
    assert str(refused.value) == "No viewer of this show has this alias; use the `a` of one of the show's comments."


async def test_a_restriction_of_an_unknown_kind_is_refused_and_a_known_one_lapses(shop: ShopCtx) -> None:
    show = await _live_show(shop)
    async with transaction(shop.app.state.sessions) as session:
        with pytest.raises(Unprocessable) as refused:
            await service.restrict(session, show, "d:dev1", "kick", None, "", alias_="a1")
        await service.restrict(session, show, "d:dev1", "mute", None, "", alias_="a1")
        await service.restrict(session, show, "d:dev2", "ban", 5, "", alias_="a2")
        now = await service.restrictions(session, show.id)
        await service.lift(session, show, "d:dev1", RestrictionKind.MUTE, alias_="a1")
        lifted = await service.restrictions(session, show.id)
    assert refused.value.code == "invalid_restriction"
    assert now == {RestrictionKind.MUTE: {"d:dev1"}, RestrictionKind.BAN: {"d:dev2"}}
    assert lifted == {RestrictionKind.MUTE: set(), RestrictionKind.BAN: {"d:dev2"}}


async def test_settling_is_claimed_by_one_caller_only(shop: ShopCtx) -> None:
    show = await _live_show(shop)
    poll_id = await _poll(shop, show)
    async with transaction(shop.app.state.sessions) as session:
        repo = InteractionRepository(session)
        assert [await repo.begin_settling(poll_id), await repo.begin_settling(poll_id)] == [True, False]


async def test_the_gateways_counters_add_up_and_mark_a_viewers_first_interaction_once(shop: ShopCtx) -> None:
    show = await _live_show(shop)
    first, later = utc_now(), utc_now() + timedelta(minutes=1)
    async with transaction(shop.app.state.sessions) as session:
        await repository.add_viewers(
            session,
            [
                {"shop_id": show.shop_id, "show_id": show.id, "viewer_key": key, "first_seen_at": first}
                for key in ("d:dev1", "d:dev1", "d:dev2")  # written twice: kept once
            ],
        )
        await repository.add_counts(session, {(show.id, repository.LIKES_COUNTER): 3, (show.id, "comments"): 1})
        await repository.add_counts(session, {(show.id, repository.LIKES_COUNTER): 4})
        await repository.mark_interacted(session, show.id, {"d:dev1"}, first)
        await repository.mark_interacted(session, show.id, {"d:dev1", "d:dev2"}, later)
        stamped = await repository.stamp_effective(session, show.id, {"d:dev1": first})
        again = await repository.stamp_effective(session, show.id, {"d:dev1": later, "d:dev2": later})
        counters = await service.counters(session, show.id)
        likes = await repository.likes(session, show.id)
        unique, effective = await ShowRepository(session).viewer_counts(show.id)
        rows = await session.execute(
            select(ShowViewer.viewer_key, ShowViewer.interacted_at).where(ShowViewer.show_id == show.id)
        )
        interacted = {key: at for key, at in rows.all()}
    assert interacted == {"d:dev1": first, "d:dev2": later}  # the first interaction is kept
    assert counters == {"likes": 7, "comments": 1}
    assert likes == 7
    assert (unique, effective) == (2, 2)
    assert stamped == ["d:dev1"]
    assert again == ["d:dev2"]  # a viewer's first effective view is stamped once
