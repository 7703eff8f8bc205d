"""The after-action report's narrative: the evaluators write it in revisions (who, when), the lead
evaluator (the first evaluator the plan lists) finalises it, and from then on it is frozen; every
save and the finalisation are audited, and a refusal changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from contracts.drills import AarNarrative, TaskRating
from hub.drills import services
from hub.drills.models import Drill, DrillAarRevision
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.errors import Conflict, Forbidden, InvalidInput
from hub.kernel.models import AuditEntry, User
from tests.hub.drills.conftest import played_to_endex

TEAM = [{"name": "lead", "city": "xuzhou"}, {"name": "second", "city": "linyi"}]


def _narrative(base: int = 0, **overrides: Any) -> AarNarrative:
    data: dict[str, Any] = {
        "base_revision": base,
        "summary": "各市接报及时，沂河段管涌处置衔接不畅。",
        "objectives": [
            {
                "objective": "O1",
                "rating": "S",
                "strengths": "值班室 3 分钟内阅知。",
                "improvements": "巡堤队伍向值班室报告晚了 25 分钟。",
            }
        ],
    }
    data.update(overrides)
    return AarNarrative.model_validate(data)


@pytest.fixture
def reported(make_drill: Callable[..., Drill]) -> Drill:
    """Return a drill played to ENDEX with its figures drafted, evaluated by a team of two."""
    drill = played_to_endex(make_drill(evaluators=TEAM))
    assert services.draft_aar(db.session, drill.id)
    db.session.commit()
    return drill


@pytest.fixture
def lead(make_user: Callable[..., User]) -> Actor:
    return Actor.for_user(make_user("lead", "xuzhou"))


@pytest.fixture
def second(make_user: Callable[..., User]) -> Actor:
    return Actor.for_user(make_user("second", "linyi"))


def _audited(drill: Drill, action: str) -> list[AuditEntry]:
    query = sa.select(AuditEntry).where(AuditEntry.entity_id == drill.id, AuditEntry.action == action)
    return list(db.session.scalars(query.order_by(AuditEntry.id)))


def _revisions(drill: Drill) -> list[DrillAarRevision]:
    query = sa.select(DrillAarRevision).where(DrillAarRevision.drill_id == drill.id)
    return list(db.session.scalars(query.order_by(DrillAarRevision.number)))


def test_each_save_that_changes_something_is_a_revision_with_author_and_time(
    reported: Drill, lead: Actor, second: Actor
) -> None:
    first = services.save_aar(db.session, lead, reported.id, _narrative())
    db.session.commit()
    assert first is not None and (first.number, first.author, first.city.slug) == (1, "lead", "xuzhou")
    # Saving the same text again adds nothing.
    assert services.save_aar(db.session, lead, reported.id, _narrative(base=1)) is None
    changed = services.save_aar(
        db.session, second, reported.id, _narrative(base=1, summary="补充：通信顺畅。")
    )
    db.session.commit()
    assert changed is not None and (changed.number, changed.author, changed.city.slug) == (
        2,
        "second",
        "linyi",
    )
    assert changed.at >= first.at

    narrative = services.aar_narrative(reported)
    assert narrative.base_revision == 2 and narrative.summary == "补充：通信顺畅。"
    (o1,) = narrative.objectives
    assert o1.rating is TaskRating.SOME_CHALLENGES and "25 分钟" in o1.improvements
    assert [r.number for r in _revisions(reported)] == [1, 2]
    assert [e.after for e in _audited(reported, "drill.aar_saved")] == [{"revision": 1}, {"revision": 2}]
    assert [e.actor for e in _audited(reported, "drill.aar_saved")] == ["lead", "second"]


def test_a_save_over_a_newer_revision_is_refused(reported: Drill, lead: Actor, second: Actor) -> None:
    services.save_aar(db.session, lead, reported.id, _narrative())
    db.session.commit()
    with pytest.raises(Conflict) as refused:
        services.save_aar(db.session, second, reported.id, _narrative(base=0, summary="另一版本"))
    assert refused.value.reason == "stale_revision" and refused.value.details == {"latest": 1, "base": 0}
    db.session.rollback()
    assert [r.number for r in _revisions(reported)] == [1]


def test_only_the_lead_evaluator_finalises_and_then_every_edit_is_refused(
    reported: Drill, lead: Actor, second: Actor, controller: Actor
) -> None:
    assert services.lead_evaluator(reported).name == "lead"
    services.save_aar(db.session, second, reported.id, _narrative())
    db.session.commit()
    for other in (second, controller):
        with pytest.raises(Forbidden):
            services.finalise_aar(db.session, other, reported.id)
        db.session.rollback()
    assert reported.aar_finalised_at is None and not _audited(reported, "drill.aar_finalised")

    services.finalise_aar(db.session, lead, reported.id)
    db.session.commit()
    assert (reported.aar_finalised_by, reported.aar_final_revision) == ("lead", 1)
    assert reported.aar_finalised_at is not None
    assert [e.after for e in _audited(reported, "drill.aar_finalised")] == [{"revision": 1}]

    for who in (lead, second):
        with pytest.raises(Conflict) as refused:
            services.save_aar(db.session, who, reported.id, _narrative(base=1, summary="定稿后再改"))
        assert refused.value.reason == "aar_final"
        db.session.rollback()
    with pytest.raises(Conflict) as again:
        services.finalise_aar(db.session, lead, reported.id)
    assert again.value.reason == "aar_final"
    db.session.rollback()
    assert [r.number for r in _revisions(reported)] == [1]
    assert services.aar_narrative(reported).summary == _narrative().summary


def test_a_report_without_narrative_is_not_finalised(reported: Drill, lead: Actor) -> None:
    # A blank first save adds no revision, so there is still nothing to finalise.
    assert services.save_aar(db.session, lead, reported.id, _narrative(summary="", objectives=[])) is None
    with pytest.raises(Conflict) as refused:
        services.finalise_aar(db.session, lead, reported.id)
    assert refused.value.reason == "aar_empty"


def test_players_and_other_cities_change_nothing(
    reported: Drill, lead: Actor, controller: Actor, make_user: Callable[..., User]
) -> None:
    services.save_aar(db.session, lead, reported.id, _narrative())
    db.session.commit()
    player = Actor.for_user(make_user("ly-duty", "linyi"))
    heze = Actor.for_user(make_user("hz-coord", "heze"))
    stranger = replace(lead, city_id=heze.city_id, user_id=heze.user_id)  # the lead's name, elsewhere
    for who in (player, stranger, controller):
        with pytest.raises(Forbidden):
            services.save_aar(db.session, who, reported.id, _narrative(base=1, summary="越权修改"))
        db.session.rollback()
        with pytest.raises(Forbidden):
            services.finalise_aar(db.session, who, reported.id)
        db.session.rollback()
    assert [r.number for r in _revisions(reported)] == [1]
    assert reported.aar_finalised_at is None
    assert len(_audited(reported, "drill.aar_saved")) == 1


def test_without_evaluators_the_first_controller_leads(
    make_drill: Callable[..., Drill], controller: Actor
) -> None:
    drill = played_to_endex(make_drill(evaluators=[]))
    services.draft_aar(db.session, drill.id)
    assert services.lead_evaluator(drill).name == "controller"
    services.save_aar(db.session, controller, drill.id, _narrative())
    services.finalise_aar(db.session, controller, drill.id)
    db.session.commit()
    assert drill.aar_final_revision == 1


def test_the_narrative_waits_for_endex_and_the_drafted_figures(
    make_drill: Callable[..., Drill], lead: Actor
) -> None:
    running = make_drill(evaluators=TEAM)
    services.start(db.session, running.id)
    with pytest.raises(Conflict) as in_play:
        services.save_aar(db.session, lead, running.id, _narrative())
    assert in_play.value.reason == "drill_not_ended"
    services.end(db.session, running.id)
    with pytest.raises(Conflict) as undrafted:
        services.save_aar(db.session, lead, running.id, _narrative())
    assert undrafted.value.reason == "aar_not_drafted"


def test_an_unknown_objective_or_a_control_character_is_refused(reported: Drill, lead: Actor) -> None:
    unknown = _narrative(objectives=[{"objective": "O9", "strengths": "—"}])
    with pytest.raises(InvalidInput) as refused:
        services.save_aar(db.session, lead, reported.id, unknown)
    assert refused.value.reason == "unknown_objective"
    with pytest.raises(ValidationError):
        _narrative(summary="NUL\x00")
    with pytest.raises(ValidationError):
        _narrative(objectives=[{"objective": "O1"}, {"objective": "O1"}])


def test_the_markdown_says_draft_then_final_with_the_narrative(reported: Drill, lead: Actor) -> None:
    draft = services.aar_markdown(db.session, reported)
    assert draft.startswith(f"# 演练评估报告：{reported.name}（草稿）")
    assert "评估结论尚未撰写" in draft and "- 评估组长：lead（xuzhou）" in draft

    services.save_aar(db.session, lead, reported.id, _narrative())
    services.finalise_aar(db.session, lead, reported.id)
    db.session.commit()
    final = services.aar_markdown(db.session, reported)
    assert final.startswith(f"# 演练评估报告：{reported.name}（定稿）")
    assert "- 报告状态：定稿（第 1 版，lead 于" in final
    assert "### 总体评价\n\n各市接报及时" in final
    assert "### O1 信息报送" in final and "- 评定：基本完成，存在一些问题" in final
    assert "- 待改进：巡堤队伍向值班室报告晚了 25 分钟。" in final
