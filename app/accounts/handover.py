"""A guest who signs in to an existing account keeps its work: the guest's projects, tasks and
activity become the account's (see :meth:`Accounts.hand_over`), and the guest is retired.

A browser becomes a guest on its first visit, with its own copies of the sample projects; an
untouched copy is not worth handing over (the account has its own), so those go to the trash.
"""

from __future__ import annotations

import asyncio

from app.accounts.service import HandedOver, User
from app.deps import Services
from app.projects.live import SYSTEM_AUTHORS


def untouched_samples(svc: Services, guest: User) -> list[str]:
    """The sample copies ``guest`` alone owns and never changed: no commit since it was made, no
    edit of the guest's in the update log, no task run on it."""
    rows = svc.studio.index.db.execute(
        "SELECT p.id FROM members m JOIN projects p ON p.id = m.project_id "
        "WHERE m.user_id = ? AND m.role = 'owner' AND p.sample IS NOT NULL AND p.deleted_at IS NULL "
        "AND p.updated_at = p.created_at "
        "AND NOT EXISTS (SELECT 1 FROM members o WHERE o.project_id = p.id AND o.user_id != m.user_id) "
        "AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.project_id = p.id) "
        "ORDER BY p.created_at, p.id",
        [guest.id],
    ).fetchall()
    return [
        pid
        for (pid,) in rows
        if not set(svc.rooms.updates.contributors(pid, 0)) - set(SYSTEM_AUTHORS)
        and svc.rooms.updates.snapshot_seq(pid) == 0
    ]


async def hand_over_guest(svc: Services, guest: User, account: User, ip: str | None) -> HandedOver:
    """Trash ``guest``'s untouched sample copies, then hand the rest over to ``account``."""
    samples = await asyncio.to_thread(untouched_samples, svc, guest)
    for pid in samples:
        await svc.rooms.evict(pid)  # commit and close a live room before its folder moves
        await asyncio.to_thread(svc.projects.delete, guest, pid)
    return await asyncio.to_thread(svc.accounts.hand_over, guest, account, ip, samples)
