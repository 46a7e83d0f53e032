"""Accounts and tokens.

Tokens are opaque random strings shown once; only their SHA-256 is stored, so a copy of the
database does not let anyone sign in. Passwords are hashed with argon2.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any, TypedDict

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.problems import Problem
from app.studio import Studio, now_iso

_hasher = PasswordHasher()
TOKEN_CACHE_S = 5.0
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
# Verifying against a real hash when the email is unknown keeps sign-in timing the same.
_DUMMY_HASH = _hasher.hash("timing-equaliser")


_RANK = {"viewer": 0, "editor": 1, "owner": 2}


class MovedProject(TypedDict):
    id: str
    name: str


class HandedOver(TypedDict):
    """What a guest that signed in to an account handed over (``from_guest`` of the sign-in)."""

    id: str
    name: str
    projects: list[MovedProject]
    """The live projects that are now the account's (trashed ones moved too, unlisted)."""
    tasks: int
    """How many of its queued or running tasks now count as the account's."""
    samples_left: int
    """Untouched sample copies moved to the trash rather than handed over."""


@dataclass(frozen=True)
class User:
    id: str
    name: str
    email: str | None
    guest: bool

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "email": self.email, "guest": self.guest}

    @property
    def commit_email(self) -> str:
        return self.email or f"{self.id}@guest.studio.invalid"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    """Account operations against the studio's index."""

    def __init__(self, studio: Studio) -> None:
        self.studio = studio
        self.index = studio.index
        self._tokens: dict[str, tuple[User, float]] = {}

    # -- audit ------------------------------------------------------------------------------------

    def audit(
        self,
        action: str,
        actor_id: str | None,
        target: str | None = None,
        ip: str | None = None,
        **detail: Any,
    ) -> None:
        self.index.db.execute(
            "INSERT INTO audit(time, actor_id, action, target, ip, detail) VALUES (?, ?, ?, ?, ?, ?)",
            [now_iso(), actor_id, action, target, ip, json.dumps(detail, sort_keys=True)],
        )

    # -- users and tokens ------------------------------------------------------------------------

    def create_guest(self, ip: str | None) -> tuple[User, str]:
        user = User(
            id=str(uuid.uuid4()), name=f"Guest {secrets.token_hex(2).upper()}", email=None, guest=True
        )
        with self.index.transaction() as db:
            db.execute(
                "INSERT INTO users(id, email, name, password_hash, guest, created_at) VALUES (?, NULL, ?, NULL, 1, ?)",
                [user.id, user.name, now_iso()],
            )
        self.audit("account.guest_created", user.id, user.id, ip)
        return user, self.issue_token(user.id)

    def register(
        self, email: str, password: str, name: str, current: User | None, ip: str | None
    ) -> tuple[User, str]:
        email = _clean_email(email)
        _check_password(password)
        name = name.strip()
        if not 1 <= len(name) <= 80:
            raise Problem(
                422,
                "Your name must be 1 to 80 characters.",
                errors=[{"field": "name", "message": "1-80 characters"}],
            )
        pw_hash = _hasher.hash(password)
        with self.index.transaction() as db:
            if db.execute("SELECT 1 FROM users WHERE email = ?", [email]).fetchone():
                raise Problem(
                    409, "An account with this email exists already: sign in instead.", slug="email-taken"
                )
            if current is not None and current.guest:
                # The guest keeps its id, so it keeps its projects, history and memberships.
                db.execute(
                    "UPDATE users SET email = ?, name = ?, password_hash = ?, guest = 0 WHERE id = ?",
                    [email, name, pw_hash, current.id],
                )
                user = User(id=current.id, name=name, email=email, guest=False)
            else:
                user = User(id=str(uuid.uuid4()), name=name, email=email, guest=False)
                db.execute(
                    "INSERT INTO users(id, email, name, password_hash, guest, created_at) VALUES (?, ?, ?, ?, 0, ?)",
                    [user.id, email, name, pw_hash, now_iso()],
                )
        self._forget_user(user.id)
        self.audit(
            "account.registered", user.id, user.id, ip, upgraded_guest=current is not None and current.guest
        )
        return user, self.issue_token(user.id)

    def login(self, email: str, password: str, ip: str | None) -> tuple[User, str]:
        user = self.check_password(email, password, ip)
        return user, self.issue_token(user.id)

    def check_password(self, email: str, password: str, ip: str | None) -> User:
        """The account ``email`` names, when ``password`` is its password (audited either way);
        401 otherwise, in the same words whether the email or the password was wrong."""
        email = email.strip().lower() if isinstance(email, str) else ""
        row = self.index.db.execute(
            "SELECT id, name, email, guest, password_hash FROM users WHERE email = ?", [email]
        ).fetchone()
        try:
            _hasher.verify(row[4] if row and row[4] else _DUMMY_HASH, password)
            ok = row is not None and row[4] is not None
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok or row is None:
            self.audit("auth.login_failed", row[0] if row else None, email, ip)
            raise Problem(401, "Wrong email or password.", slug="bad-credentials")
        user = User(id=row[0], name=row[1], email=row[2], guest=bool(row[3]))
        self.audit("auth.login", user.id, user.id, ip)
        return user

    def issue_token(self, user_id: str) -> str:
        token = secrets.token_urlsafe(32)
        self.index.db.execute(
            "INSERT INTO tokens(hash, user_id, created_at) VALUES (?, ?, ?)",
            [token_hash(token), user_id, now_iso()],
        )
        return token

    def authenticate(self, token: str) -> User | None:
        """The user a bearer token belongs to, or None for an unknown or revoked token.

        Answers are remembered for a few seconds (every API request authenticates); this process
        forgets them at once on logout, registration and erasure. Another server process sharing
        the index may honour a revoked token for up to ``TOKEN_CACHE_S``."""
        if not token or len(token) > 200:
            return None
        key = token_hash(token)
        now = time.monotonic()
        hit = self._tokens.get(key)
        if hit is not None and hit[1] > now:
            return hit[0]
        row = self.index.db.execute(
            "SELECT u.id, u.name, u.email, u.guest FROM tokens t JOIN users u ON u.id = t.user_id "
            "WHERE t.hash = ? AND t.revoked_at IS NULL",
            [key],
        ).fetchone()
        if row is None:
            return None
        if len(self._tokens) > 10_000:
            self._tokens.clear()
        user = User(id=row[0], name=row[1], email=row[2], guest=bool(row[3]))
        self._tokens[key] = (user, now + TOKEN_CACHE_S)
        return user

    def _forget_user(self, user_id: str) -> None:
        for key in [k for k, (u, _) in self._tokens.items() if u.id == user_id]:
            self._tokens.pop(key, None)

    def logout(self, token: str, user: User, ip: str | None) -> None:
        self._tokens.pop(token_hash(token), None)
        self.index.db.execute(
            "UPDATE tokens SET revoked_at = ? WHERE hash = ?", [now_iso(), token_hash(token)]
        )
        self.audit("auth.logout", user.id, user.id, ip)

    def find_by_email(self, email: str) -> User | None:
        row = self.index.db.execute(
            "SELECT id, name, email, guest FROM users WHERE email = ?", [email.strip().lower()]
        ).fetchone()
        return User(id=row[0], name=row[1], email=row[2], guest=bool(row[3])) if row else None

    # -- a guest signs in ---------------------------------------------------------------------------

    def hand_over(self, guest: User, account: User, ip: str | None, left_behind: list[str]) -> HandedOver:
        """Move everything ``guest`` has to ``account`` in one transaction, then retire the guest.

        Its memberships (a project both are on keeps the higher role), the tasks it asked for,
        what it created and its activity become the account's; its tokens are deleted. The guest
        row stays, marked ``merged_into``, so history written under it keeps its name and erasing
        the account erases it too. ``left_behind``: the guest's projects not handed over (untouched
        sample copies the caller trashed), which stay the guest's until the trash is purged. A
        guest retired already hands over nothing.

        >>> accounts.hand_over(guest, ines, "127.0.0.1", [])["projects"]  # doctest: +SKIP
        [{'id': '…', 'name': 'Harbour Lights'}]
        """
        with self.index.transaction() as db:
            row = db.execute("SELECT guest, merged_into FROM users WHERE id = ?", [guest.id]).fetchone()
            if row is None or not row[0] or row[1] is not None or guest.id == account.id:
                return {"id": guest.id, "name": guest.name, "projects": [], "tasks": 0, "samples_left": 0}
            moved: list[MovedProject] = []
            for pid, role, name, deleted in db.execute(
                "SELECT m.project_id, m.role, p.name, p.deleted_at FROM members m "
                "JOIN projects p ON p.id = m.project_id WHERE m.user_id = ? ORDER BY p.created_at, p.id",
                [guest.id],
            ).fetchall():
                if pid in left_behind:
                    continue  # stays with the retired guest, and is purged with the trash
                theirs = db.execute(
                    "SELECT role FROM members WHERE project_id = ? AND user_id = ?", [pid, account.id]
                ).fetchone()
                if theirs is None:
                    db.execute(
                        "UPDATE members SET user_id = ? WHERE project_id = ? AND user_id = ?",
                        [account.id, pid, guest.id],
                    )
                else:
                    if _RANK[role] > _RANK[theirs[0]]:
                        db.execute(
                            "UPDATE members SET role = ? WHERE project_id = ? AND user_id = ?",
                            [role, pid, account.id],
                        )
                    db.execute("DELETE FROM members WHERE project_id = ? AND user_id = ?", [pid, guest.id])
                if deleted is None:
                    moved.append({"id": pid, "name": name})
            active = db.execute(
                "SELECT COUNT(*) FROM tasks WHERE requester_id = ? AND state IN ('queued', 'running')",
                [guest.id],
            ).fetchone()[0]
            # Who asked for a task decides whose quota it counts in and who its results are
            # credited to when it finishes.
            db.execute("UPDATE tasks SET requester_id = ? WHERE requester_id = ?", [account.id, guest.id])
            db.execute("UPDATE projects SET created_by = ? WHERE created_by = ?", [account.id, guest.id])
            db.execute("UPDATE webhooks SET created_by = ? WHERE created_by = ?", [account.id, guest.id])
            db.execute("UPDATE activity SET user_id = ? WHERE user_id = ?", [account.id, guest.id])
            db.execute("DELETE FROM tokens WHERE user_id = ?", [guest.id])
            db.execute("UPDATE users SET merged_into = ? WHERE id = ?", [account.id, guest.id])
            result: HandedOver = {
                "id": guest.id,
                "name": guest.name,
                "projects": moved,
                "tasks": int(active),
                "samples_left": len(left_behind),
            }
            self.audit(
                "account.guest_handed_over",
                account.id,
                guest.id,
                ip,
                projects=[p["id"] for p in moved],
                active_tasks=int(active),
                samples_trashed=left_behind,
            )
        self._forget_user(guest.id)
        return result

    # -- GDPR ------------------------------------------------------------------------------------

    def export_data(self, user: User) -> dict[str, Any]:
        """Everything the studio holds about ``user`` (their projects' files come by project export)."""
        db = self.index.db
        row = db.execute("SELECT created_at FROM users WHERE id = ?", [user.id]).fetchone()

        def rows(sql: str) -> list[dict[str, Any]]:
            cur = db.execute(sql, [user.id])
            cols = [c[0] for c in cur.description]
            return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

        return {
            "user": {**user.public(), "created_at": row[0] if row else None},
            "memberships": rows(
                "SELECT p.id AS project_id, p.name, p.path, m.role, m.added_at FROM members m "
                "JOIN projects p ON p.id = m.project_id WHERE m.user_id = ? ORDER BY m.added_at"
            ),
            "tokens": rows(
                "SELECT created_at, last_used_at, revoked_at FROM tokens WHERE user_id = ? ORDER BY created_at"
            ),
            "audit": rows(
                "SELECT time, action, target, ip, detail FROM audit WHERE actor_id = ? ORDER BY id"
            ),
            "activity": rows(
                "SELECT project_id, time, kind, summary FROM activity WHERE user_id = ? ORDER BY id"
            ),
            "guest_sessions": rows(
                "SELECT id, name, created_at FROM users WHERE merged_into = ? ORDER BY created_at"
            ),
        }

    def delete_account(self, user: User, ip: str | None, trashed: list[str]) -> None:
        """Erase ``user``: tokens, memberships and the account row. Trashed projects keep no owner
        and are purged with the trash; the audit log keeps the pseudonymous id only."""
        with self.index.transaction() as db:
            db.execute("DELETE FROM tokens WHERE user_id = ?", [user.id])
            db.execute("DELETE FROM members WHERE user_id = ?", [user.id])
            db.execute("UPDATE activity SET user_name = 'deleted user' WHERE user_id = ?", [user.id])
            db.execute("DELETE FROM users WHERE id = ?", [user.id])
            # The guest sessions that became this account are the same person.
            db.execute("DELETE FROM users WHERE merged_into = ?", [user.id])
        self._forget_user(user.id)
        self.audit("account.deleted", user.id, user.id, ip, trashed_projects=trashed)


def _clean_email(email: object) -> str:
    if not isinstance(email, str) or not _EMAIL.match(email.strip()) or len(email) > 254:
        raise Problem(
            422,
            "Enter a valid email address, like name@example.com.",
            errors=[{"field": "email", "message": "not an email address"}],
        )
    return email.strip().lower()


def _check_password(password: object) -> None:
    if not isinstance(password, str) or not 10 <= len(password) <= 1024:
        raise Problem(
            422,
            "Choose a password of at least 10 characters.",
            errors=[{"field": "password", "message": "at least 10 characters"}],
        )
