from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from liveloop.kit.http import ShownOnce
from liveloop.kit.money import Currency
from liveloop.kit.schemas import ExternalId, Id, Money, RequestModel, Timestamp, Timezone, WebUrl
from liveloop.markets.schemas import MarketCode
from liveloop.referral.schemas import RewardSpec

# A high point every 15 to 20 minutes (PRODUCT.md, "show rhythm").
RHYTHM_MIN_GAP = 15
RHYTHM_MAX_GAP = 20


class Product(RequestModel):
    sku: str = Field(min_length=1, max_length=100)
    title: str = Field(min_length=1, max_length=200)
    price_minor: Money
    currency: Currency
    url: WebUrl | None = None
    image_url: WebUrl | None = None


class RhythmPoint(RequestModel):
    at_minute: int = Field(ge=1, le=600, description="Minutes after the show starts")
    kind: Literal["perk", "lottery", "reveal"]
    title: str = Field(min_length=1, max_length=200)
    announce_before_seconds: int = Field(120, ge=10, le=900, description="Pre-announced this long ahead")


BlockedWord = Annotated[str, Field(min_length=1, max_length=100)]


class Moderation(RequestModel):
    max_length: int = Field(200, ge=1, le=500)
    slow_mode_seconds: float = Field(0, ge=0, le=300)
    comments_per_10s: int = Field(5, ge=1, le=100)
    likes_per_second: int = Field(30, ge=1, le=1000)
    blocked_words: dict[
        Annotated[str, Field(min_length=1, max_length=16)], Annotated[list[BlockedWord], Field(max_length=500)]
    ] = Field(default_factory=dict, max_length=20, description='Per language code, or "*" for every language')


class Video(RequestModel):
    provider: Literal["none", "hls", "livekit"] = "none"
    hls_url: WebUrl | None = None

    @model_validator(mode="after")
    def _hls(self) -> Video:
        if self.provider == "hls" and self.hls_url is None:
            raise ValueError("an HLS show needs hls_url")
        return self


def check_rhythm(points: list[RhythmPoint]) -> list[RhythmPoint]:
    points = sorted(points, key=lambda p: p.at_minute)
    previous = 0
    for point in points:
        gap = point.at_minute - previous
        if previous and not RHYTHM_MIN_GAP <= gap <= RHYTHM_MAX_GAP:
            raise ValueError(
                f"high points should be {RHYTHM_MIN_GAP}-{RHYTHM_MAX_GAP} minutes apart; "
                f"minute {point.at_minute} is {gap} after the previous one"
            )
        if not previous and point.at_minute > RHYTHM_MAX_GAP:
            raise ValueError(f"the first high point should come within {RHYTHM_MAX_GAP} minutes of the start")
        previous = point.at_minute
    return points


def default_rhythm(minutes: int) -> list[RhythmPoint]:
    kinds: list[Literal["perk", "lottery", "reveal"]] = ["perk", "lottery", "reveal"]
    titles = {"perk": "Perk for everyone watching", "lottery": "Comment lottery", "reveal": "Product reveal"}
    return [
        RhythmPoint(at_minute=at, kind=kinds[i % 3], title=titles[kinds[i % 3]])
        for i, at in enumerate(range(RHYTHM_MIN_GAP, max(minutes, 1), RHYTHM_MIN_GAP))
    ]


class ShowCreate(RequestModel):
    title: str = Field(min_length=1, max_length=200)
    market: MarketCode | None = Field(None, description="The shop's default market when absent")
    language: str | None = Field(None, max_length=16, description="The market's first locale when absent")
    host_name: str = Field(min_length=1, max_length=120)
    host_member_id: Id | None = None
    host_timezone: Timezone | None = Field(None, description="IANA zone; the market's zone when absent")
    scheduled_at: Timestamp = Field(
        description="With an offset, an instant; without one, a wall-clock time in the host's time zone"
    )
    planned_minutes: int = Field(60, ge=5, le=600)
    pinned: list[Product] = Field(default_factory=list, max_length=50)
    rhythm: list[RhythmPoint] | None = Field(
        None,
        max_length=50,
        description="Planned high points; one every 15 minutes (perk, lottery, reveal…) when absent",
    )
    moderation: Moderation = Field(default_factory=Moderation)
    video: Video = Field(default_factory=Video)

    @field_validator("rhythm")
    @classmethod
    def _rhythm(cls, v: list[RhythmPoint] | None) -> list[RhythmPoint] | None:
        return None if v is None else check_rhythm(v)


class ShowUpdate(RequestModel):
    title: str | None = Field(None, min_length=1, max_length=200)
    scheduled_at: Timestamp | None = None
    pinned: list[Product] | None = Field(None, max_length=50)
    rhythm: list[RhythmPoint] | None = Field(None, max_length=50)
    moderation: Moderation | None = None
    video: Video | None = None
    replay_url: WebUrl | None = None

    @field_validator("rhythm")
    @classmethod
    def _rhythm(cls, v: list[RhythmPoint] | None) -> list[RhythmPoint] | None:
        return None if v is None else check_rhythm(v)


class ShowEnd(RequestModel):
    replay_url: WebUrl | None = None


class Show(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    title: str
    market: str
    language: str
    host_name: str
    host_member_id: str | None
    host_timezone: str
    scheduled_at: datetime
    scheduled_local: str = ""
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    replay_url: str | None
    video_provider: str
    hls_url: str | None
    pinned: list[dict[str, Any]]
    rhythm: list[dict[str, Any]]
    moderation: dict[str, Any]
    counters: dict[str, int] = Field(default_factory=dict)


class ViewerTokenIn(RequestModel):
    member_id: Id | None = Field(None, description="The member watching (one of member_id, external_id)")
    external_id: ExternalId | None = Field(None, description="The shop's customer id of the member watching")
    device_id: str | None = Field(
        None,
        max_length=80,
        description="Links this device's earlier watching: the browser's `ll_did` cookie value as liveloop set "
        "it (else 422 `invalid_device`)",
    )
    name: str | None = Field(
        None,
        max_length=60,
        description="The name the room shows for this member. Without it: the member's `display_name`, "
        "else the initial of its name and a mask (`A•••`); the room never shows a real name unasked.",
    )

    @model_validator(mode="after")
    def _who(self) -> ViewerTokenIn:
        if not (self.member_id or self.external_id):
            raise ValueError("give member_id or external_id")
        return self


class JoinIn(RequestModel):
    name: str | None = Field(None, max_length=60)


class TokenOut(BaseModel):
    token: ShownOnce = Field(
        description="Signed; shown once. Send it as the WebSocket subprotocol, never in a URL: "
        '`new WebSocket(ws_url, ["liveloop.v1", token])`.'
    )
    viewer_key: str = Field(
        description="Who this token speaks for, for the token holder only: the room never shows it to others "
        "(they see a per-show alias)."
    )
    expires_in: int = Field(description="Seconds until the token expires; ask for a new one then.")
    ws_url: str = Field(description="The room's socket; `?since=<last q>` resumes after a reconnect.")


# --- interactions ----------------------------------------------------------------------------------------

# A quiz answer or poll choice (a pinned product's SKU in a "which product next" poll).
Option = Annotated[str, Field(min_length=1, max_length=100)]


class _Launch(RequestModel):
    title: str | None = Field(None, max_length=200)
    window_seconds: int = Field(120, ge=5, le=7200, description="Closes by itself after this long")


class KeywordLottery(_Launch):
    kind: Literal["keyword_lottery"]
    keyword: str = Field(min_length=1, max_length=40, description="Viewers enter by commenting it")
    winners: int = Field(1, ge=1, le=1000)
    prize: RewardSpec


class LikeSprint(_Launch):
    kind: Literal["like_sprint"]
    target: int = Field(ge=1, le=10**9, description="Likes needed from now on")
    reward: RewardSpec = Field(description="Given to every member watching when the target is reached")


class DanmakuChallenge(_Launch):
    kind: Literal["danmaku_challenge"]
    keyword: str = Field(min_length=1, max_length=40)
    target: int = Field(ge=1, le=10**7, description="Comments with the keyword needed")
    reward: RewardSpec = Field(description="Usually a coupon; every member watching gets it once")


class Quiz(_Launch):
    kind: Literal["quiz"]
    window_seconds: int = Field(30, ge=5, le=600)
    question: str = Field(min_length=1, max_length=300)
    options: list[Option] = Field(min_length=2, max_length=6)
    answer: int = Field(ge=0, le=5, description="Index of the right option (never shown to viewers before closing)")
    points: int = Field(ge=1, le=1_000_000, description="Points for each member who answers right")

    @model_validator(mode="after")
    def _answer(self) -> Quiz:
        if self.answer >= len(self.options):
            raise ValueError("answer must be the index of one of the options")
        return self


class Poll(_Launch):
    kind: Literal["poll"]
    window_seconds: int = Field(60, ge=5, le=7200)
    question: str = Field(min_length=1, max_length=300)
    options: list[Option] = Field(min_length=2, max_length=8)
    next_product: bool = Field(False, description='"Which product next": options are pinned product SKUs')


class TeamPK(_Launch):
    kind: Literal["team_pk"]
    window_seconds: int = Field(600, ge=30, le=7200)
    teams: list[Annotated[str, Field(max_length=60)]] = Field(min_length=2, max_length=4)
    metric: Literal["invites", "interactions", "watch_time"]
    assign: Literal["choose", "auto"] = "choose"
    reward: RewardSpec = Field(description="Every member of the winning team gets it")

    @field_validator("teams")
    @classmethod
    def _teams(cls, v: list[str]) -> list[str]:
        names = [t.strip() for t in v]
        if any(not t or len(t) > 30 for t in names) or len(set(names)) != len(names):
            raise ValueError("teams need distinct names of 1 to 30 characters")
        return names


class FlashOffer(_Launch):
    kind: Literal["flash_offer"]
    sku: str = Field(min_length=1, max_length=100)
    quantity: int = Field(ge=1, le=1_000_000, description="Only the first this-many claims get the bonus")
    per_buyer: int = Field(1, ge=1, le=10)
    bonus: RewardSpec


InteractionCreate = Annotated[
    KeywordLottery | LikeSprint | DanmakuChallenge | Quiz | Poll | TeamPK | FlashOffer, Field(discriminator="kind")
]


class Interaction(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    show_id: str
    kind: str
    status: str
    title: str
    config: dict[str, Any]
    result: dict[str, Any]
    progress: int
    seed_hash: str | None
    closes_at: datetime | None
    settled_at: datetime | None
    created_at: datetime


class CohostRequest(BaseModel):
    id: str
    alias: str = Field(description="The viewer's alias in the show, as its comments carry it")
    name: str
    status: str


class Restriction(BaseModel):
    alias: str = Field(description="The restricted viewer's alias in the show")
    kind: str
    until: datetime | None


class CohostDecision(BaseModel):
    id: str
    status: str = Field(description="approved or declined")


class LiveStats(BaseModel):
    status: str
    viewers_now: int = Field(description="Viewers watching now, across the gateway processes")
    unique_viewers: int
    effective_viewers: int = Field(description="Viewers who watched at least 10 s")
    counters: dict[str, int]


class InteractionCard(BaseModel):
    """An interaction as the room shows it: its card and, once settled, its result (names by alias only)."""

    k: str = Field(description="The interaction's kind")
    card: str = Field(description="The interaction's id")
    title: str
    config: dict[str, Any] = Field(description="Without what stays secret until it is settled (a quiz's answer)")
    progress: int
    status: str
    closes_at: str | None
    seed_hash: str | None = Field(None, description="A keyword lottery's commitment: sha256 of its seed")
    result: dict[str, Any] | None = Field(None, description="Once settled")
    end: bool | None = None


class VideoToken(BaseModel):
    provider: Literal["livekit"]
    url: str
    room: str
    token: str
    can_publish: bool
