"""The audit trail for people: action codes and changed fields by their labels, before → after."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from hub.app import settings_of

ACTION_LABELS: dict[str, LazyString] = {
    "action_item.opened": _l("督办事项：立项"),
    "action_item.reminded": _l("督办事项：催办"),
    "aid_commitment.offered": _l("支援承诺：提出"),
    "aid_commitment.overdue": _l("支援承诺：逾期"),
    "aid_commitment.signature_chased": _l("支援承诺：催签"),
    "aid_registry.verify_reminded": _l("支援资源库：提醒核实"),
    "aid_request.asked": _l("支援请求：征询"),
    "aid_request.closed": _l("支援请求：关闭"),
    "aid_request.created": _l("支援请求：创建"),
    "aid_request.declined": _l("支援请求：拒绝"),
    "aid_resource.fed": _l("支援资源：平台同步"),
    "aid_resource.registered": _l("支援资源：登记"),
    "aid_resource.updated": _l("支援资源：更新"),
    "aid_resource.withdrawn": _l("支援资源：撤回"),
    "bulletin.cancelled": _l("通报：撤销"),
    "bulletin.issued": _l("通报：发布"),
    "bulletin.receipt": _l("通报：签收"),
    "bulletin.redelivery_requested": _l("通报：要求重新送达"),
    "bulletin.updated": _l("通报：更新"),
    "command.sent": _l("车辆指令：下发"),
    "conference.created": _l("视频会议：创建"),
    "daily_report.corrected": _l("日报告：更正"),
    "daily_report.filed": _l("日报告：报送"),
    "desk.acknowledged": _l("值班台：确认已阅"),
    "drill.aar_drafted": _l("演练：起草评估报告"),
    "drill.approved": _l("演练：批准"),
    "drill.contingency_added": _l("演练：增加应急情景"),
    "drill.corrective_action": _l("演练：整改措施"),
    "drill.created": _l("演练：创建"),
    "drill.endex": _l("演练：结束"),
    "drill.flagged": _l("演练：标记"),
    "drill.hotwash": _l("演练：现场讲评"),
    "drill.inject_delivered": _l("演练：注入已送达"),
    "drill.inject_sent": _l("演练：发出注入"),
    "drill.inject_skipped": _l("演练：跳过注入"),
    "drill.msel_imported": _l("演练：导入脚本"),
    "drill.observation": _l("演练：观察记录"),
    "drill.paused": _l("演练：暂停"),
    "drill.response": _l("演练：响应"),
    "drill.resumed": _l("演练：继续"),
    "drill.startex": _l("演练：开始"),
    "duty.directory_imported": _l("通讯录：导入"),
    "duty.roster_imported": _l("值班表：导入"),
    "incident.created": _l("事件：接报"),
    "incident.report_added": _l("事件：续报"),
    "incident.updated": _l("事件：更新"),
    "linkage_system.registered": _l("联动系统：登记"),
    "meeting.agenda_item": _l("会商：议程事项"),
    "meeting.agenda_sent": _l("会商：发送议程"),
    "meeting.answered": _l("会商：答复邀请"),
    "meeting.called": _l("会商：召集"),
    "meeting.cancelled": _l("会商：取消"),
    "meeting.created": _l("会商：创建"),
    "meeting.expert_answered": _l("会商：专家答复"),
    "meeting.invitations_delivered": _l("会商：邀请已送达"),
    "meeting.minutes_distributed": _l("会商：分发纪要"),
    "meeting.minutes_saved": _l("会商：保存纪要"),
    "meeting.opened": _l("会商：开始"),
    "meeting.proposed": _l("会商：提议"),
    "meeting.public_part_published": _l("会商：公开部分发布"),
    "meeting.resolution": _l("会商：决议"),
    "meeting.roll_call": _l("会商：点名"),
    "meeting.signed": _l("会商：签署"),
    "notification.created": _l("事件通知：发出"),
    "notification.read": _l("事件通知：已阅"),
    "partner.registered": _l("对接平台：登记"),
    "partner.tokens_rotated": _l("对接平台：更换令牌"),
    "token.issued": _l("令牌：签发"),
    "user.activated": _l("用户：启用"),
    "user.created": _l("用户：创建"),
    "user.deactivated": _l("用户：停用"),
    "user.locked": _l("用户：锁定"),
    "user.password_reset": _l("用户：重置密码"),
    "user.unlocked": _l("用户：解除锁定"),
    "vehicle.registered": _l("车辆：登记"),
    "verification.answered": _l("核报：回复"),
    "verification.requested": _l("核报：请求"),
}

FIELD_LABELS: dict[str, LazyString] = {
    "city": _l("城市"),
    "cities": _l("城市"),
    "kind": _l("类型"),
    "title": _l("标题"),
    "status": _l("状态"),
    "level": _l("级别"),
    "category": _l("类别"),
    "description": _l("描述"),
    "location": _l("地点"),
    "latitude": _l("纬度"),
    "longitude": _l("经度"),
    "occurred_at": _l("发生时间"),
    "affected_cities": _l("涉及城市"),
    "exercise": _l("演练"),
    "body": _l("内容"),
    "text": _l("正文"),
    "name": _l("名称"),
    "number": _l("编号"),
    "reason": _l("原因"),
    "scope": _l("范围"),
    "colour": _l("颜色"),
    "area": _l("区域"),
    "receipt_deadline": _l("签收期限"),
    "expires_at": _l("失效时间"),
    "deadline": _l("期限"),
    "role": _l("角色"),
    "username": _l("用户名"),
    "display_name": _l("姓名"),
    "active": _l("启用"),
    "answer": _l("答复"),
    "quantity": _l("数量"),
    "date": _l("日期"),
    "day": _l("日期"),
    "zero": _l("零报告"),
    "report": _l("报告"),
    "state": _l("状态"),
}


def action_label(code: str) -> str:
    """Name an action in the reader's language; an action without a label keeps its code."""
    label = ACTION_LABELS.get(code)
    return str(label) if label is not None else code


def action_choices() -> list[tuple[str, str]]:
    """Return (code, label) of every labelled action, by label, for the trail's filter."""
    return sorted(((code, str(label)) for code, label in ACTION_LABELS.items()), key=lambda c: c[1])


@dataclass(frozen=True)
class FieldChange:
    """One field of an audit entry: its label, the value before and the value after."""

    label: str
    before: str
    after: str
    changed: bool


def _local_time(value: str) -> str | None:
    """Write a stored time ("2026-11-30T03:00:00+00:00") in the hub's zone; None if it is not one."""
    if len(value) < 20 or value[4:5] != "-" or "T" not in value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(ZoneInfo(settings_of(current_app).timezone)).strftime("%Y-%m-%d %H:%M:%S")


def _shown(value: object) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, str) and (local := _local_time(value)) is not None:
        return local
    if isinstance(value, bool):
        return _("是") if value else _("否")
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return _("、").join(str(v) for v in value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def field_changes(before: dict[str, object] | None, after: dict[str, object] | None) -> list[FieldChange]:
    """List the fields an entry holds, in the order written, with the old and the new value."""
    old, new = before or {}, after or {}
    names = list(dict.fromkeys([*old, *new]))
    return [
        FieldChange(
            label=str(FIELD_LABELS[name]) if name in FIELD_LABELS else name,
            before=_shown(old.get(name)) if before is not None else "",
            after=_shown(new.get(name)) if after is not None else "",
            changed=before is not None and after is not None and old.get(name) != new.get(name),
        )
        for name in names
    ]
