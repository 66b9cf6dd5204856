"""Admin console accounts: set-up links, passwords, sign-in throttling, the second factor
(TOTP, recovery codes, passkeys), sessions and account management.

Everything runs against the real database (SQLite, or PostgreSQL with
BLINK_TEST_DATABASE=postgresql), real argon2, real TOTP and real P-256 signatures.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import time
from collections.abc import Callable
from datetime import timedelta

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update

from blink_sms.actors import COMMAND_LINE, Forbidden, Role
from blink_sms.context import Blink
from blink_sms.models import Admin, AdminToken, AuditEvent, Base, Passkey, RecoveryCode, utcnow
from blink_sms.services import admins, second_factor
from blink_sms.services.admins import SignInRefused, TokenInvalid
from blink_sms.services.errors import Conflict, Invalid
from tests.conftest import PUBLIC_URL, World
from tests.enrollment.smtp import SmtpServer
from tests.support.webauthn_authenticator import SoftAuthenticator

PASSWORD = "correct horse battery staple"
IP = "203.0.113.7"
RECOVERY = re.compile(r"[2-9a-hjkmnp-z]{4}-[2-9a-hjkmnp-z]{4}-[2-9a-hjkmnp-z]{4}")


# --- helpers -----------------------------------------------------------------------------------


def token_of(url: str) -> str:
    assert url.startswith(f"{PUBLIC_URL}/admin/setup/"), url
    return url.rsplit("/", 1)[1]


def everything_stored(services: Blink) -> str:
    """Every row of every table, as text: what someone with the database would see."""
    with services.db.engine.connect() as connection:
        return "\n".join(
            repr(tuple(row))
            for table in Base.metadata.sorted_tables
            for row in connection.execute(table.select())
        )


def events(services: Blink, action: str) -> list[AuditEvent]:
    with services.db.session() as session:
        query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        return list(session.execute(query).scalars())


MakeAdmin = Callable[..., Admin]


@pytest.fixture
def make_admin(services: Blink) -> MakeAdmin:
    """An admin who has used their set-up link: password set, no second factor yet."""

    def make(email: str, role: Role = Role.MSP_OWNER, *, client_id: int | None = None) -> Admin:
        with services.db.session() as session:
            client = None
            if client_id is not None:
                from blink_sms.models import Client

                client = session.get(Client, client_id)
            _, url = admins.create_admin(
                services, session, COMMAND_LINE, email=email, role=role, client=client
            )
            return admins.complete_setup(services, session, token_of(url), PASSWORD)

    return make


def sign_in(services: Blink, email: str, password: str = PASSWORD, ip: str = IP) -> Admin:
    with services.db.session() as session:
        return admins.authenticate(services, session, email=email, password=password, ip=ip)


def refusal(services: Blink, email: str, password: str = PASSWORD, ip: str = IP) -> SignInRefused:
    with pytest.raises(SignInRefused) as caught:
        sign_in(services, email, password, ip)
    return caught.value


def enrol_totp(services: Blink, admin: Admin) -> tuple[str, list[str]]:
    """Enrol an authenticator app; the secret and the recovery codes."""
    enrolment = second_factor.begin_totp(services, admin)
    with services.db.session() as session:
        fresh = session.get(Admin, admin.id)
        assert fresh is not None
        codes = second_factor.confirm_totp(
            services, session, fresh, enrolment.secret, pyotp.TOTP(enrolment.secret).now()
        )
    return enrolment.secret, codes


def totp(services: Blink, admin_id: int, code: str) -> bool:
    with services.db.session() as session:
        admin = session.get(Admin, admin_id)
        assert admin is not None
        return second_factor.verify_totp(services, session, admin, code)


def wrong_code(secret: str) -> str:
    """A six-digit code that is valid at no step near now."""
    totp_ = pyotp.TOTP(secret)
    now = time.time()
    valid = {totp_.at(now + offset) for offset in range(-90, 91, 15)}
    return next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in valid)


# --- creating accounts -------------------------------------------------------------------------


def test_create_admin_returns_a_setup_link_stored_only_as_a_hash(services: Blink) -> None:
    with services.db.session() as session:
        admin, url = admins.create_admin(
            services, session, COMMAND_LINE, email="  Ann@MSP.Example ", role=Role.MSP_OWNER
        )
    token = token_of(url)
    assert len(token) >= 43  # 32 random bytes
    assert admin.email == "ann@msp.example" and admin.password_hash is None
    with services.db.session() as session:
        row = session.execute(select(AdminToken)).scalar_one()
    assert row.purpose == "setup" and row.used_at is None
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert timedelta(hours=71) < row.expires_at - utcnow() <= timedelta(hours=72)
    assert token not in everything_stored(services)
    [event] = events(services, "admin.created")
    assert event.actor == "cli" and event.detail["role"] == "msp-owner"


def test_create_admin_checks_email_role_and_client(services: Blink, world: World) -> None:
    with services.db.session() as session:

        def create(email: str, role: Role, client: object = None) -> Admin:
            return admins.create_admin(
                services,
                session,
                COMMAND_LINE,
                email=email,
                role=role,
                client=client,  # type: ignore[arg-type]
            )[0]

        with pytest.raises(Invalid) as bad:
            create("not-an-address", Role.MSP_OWNER)
        assert bad.value.field == "email"
        with pytest.raises(Invalid) as owner_with_client:
            create("o@msp.example", Role.MSP_OWNER, world.client)
        assert owner_with_client.value.field == "client"
        with pytest.raises(Invalid) as tech_with_client:
            create("t@msp.example", Role.MSP_TECHNICIAN, world.client)
        assert tech_with_client.value.field == "client"
        with pytest.raises(Invalid) as client_admin_alone:
            create("c@contoso.example", Role.CLIENT_ADMIN)
        assert client_admin_alone.value.field == "client"
        assert create("c@contoso.example", Role.CLIENT_ADMIN, world.client).client_id
        assert create("audit@msp.example", Role.AUDITOR).client_id is None
        assert create("audit@contoso.example", Role.AUDITOR, world.client).client_id
        with pytest.raises(Invalid) as duplicate:
            create("C@Contoso.Example", Role.AUDITOR, world.client)
        assert duplicate.value.field == "email" and "exists" in duplicate.value.message


def test_only_an_owner_may_create_admins(services: Blink, make_admin: MakeAdmin) -> None:
    tech = make_admin("tech@msp.example", Role.MSP_TECHNICIAN)
    with services.db.session() as session, pytest.raises(Forbidden):
        admins.create_admin(
            services,
            session,
            admins.actor_for(tech),
            email="x@msp.example",
            role=Role.MSP_OWNER,
        )


# --- set-up links and passwords ----------------------------------------------------------------


def test_password_is_stored_only_as_an_argon2id_hash(
    services: Blink, make_admin: MakeAdmin
) -> None:
    admin = make_admin("ann@msp.example")
    sign_in(services, "ann@msp.example")
    assert admin.password_hash is not None and admin.password_hash.startswith("$argon2id$")
    stored = everything_stored(services)
    assert "$argon2id$" in stored
    assert PASSWORD not in stored


def test_looking_at_a_setup_link_does_not_use_it(services: Blink) -> None:
    with services.db.session() as session:
        _, url = admins.create_admin(
            services, session, COMMAND_LINE, email="ann@msp.example", role=Role.MSP_OWNER
        )
        for _ in range(3):  # a mail scanner, then the person, then a reload
            assert admins.check_setup_token(session, token_of(url)).used_at is None
        admin = admins.complete_setup(services, session, token_of(url), PASSWORD)
    assert admin.password_hash is not None
    [event] = events(services, "admin.setup_completed")
    assert event.detail["admin_id"] == admin.id


def test_a_used_setup_link_is_refused(services: Blink) -> None:
    with services.db.session() as session:
        _, url = admins.create_admin(
            services, session, COMMAND_LINE, email="ann@msp.example", role=Role.MSP_OWNER
        )
        admins.complete_setup(services, session, token_of(url), PASSWORD)
        with pytest.raises(TokenInvalid) as again:
            admins.complete_setup(services, session, token_of(url), "another long password")
        assert again.value.reason == "used"
        with pytest.raises(TokenInvalid) as looked:
            admins.check_setup_token(session, token_of(url))
        assert looked.value.reason == "used"
    sign_in(services, "ann@msp.example")  # the first password still holds
    assert refusal(services, "ann@msp.example", "another long password").reason == "credentials"


def test_an_expired_setup_link_is_refused(services: Blink) -> None:
    with services.db.session() as session:
        admin, url = admins.create_admin(
            services, session, COMMAND_LINE, email="ann@msp.example", role=Role.MSP_OWNER
        )
        session.execute(update(AdminToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
        for attempt in (
            lambda: admins.check_setup_token(session, token_of(url)),
            lambda: admins.complete_setup(services, session, token_of(url), PASSWORD),
        ):
            with pytest.raises(TokenInvalid) as expired:
                attempt()
            assert expired.value.reason == "expired"
        assert session.get(Admin, admin.id).password_hash is None  # type: ignore[union-attr]


def test_an_unknown_setup_link_is_refused(services: Blink) -> None:
    with services.db.session() as session, pytest.raises(TokenInvalid) as unknown:
        admins.check_setup_token(session, "x" * 43)
    assert unknown.value.reason == "unknown" and "not valid" in unknown.value.message


def test_a_refused_password_leaves_the_link_usable(services: Blink) -> None:
    with services.db.session() as session:
        _, url = admins.create_admin(
            services, session, COMMAND_LINE, email="annabel@msp.example", role=Role.MSP_OWNER
        )
        for password, words in (
            ("short pass", "at least 12"),
            ("x" * 257, "at most 256"),
            ("my name is ANNABEL ok", "email address"),
        ):
            with pytest.raises(Invalid) as refused:
                admins.complete_setup(services, session, token_of(url), password)
            assert refused.value.field == "password" and words in refused.value.message
        assert admins.complete_setup(services, session, token_of(url), "y" * 256).password_hash


def test_a_new_setup_link_replaces_the_open_one(services: Blink, make_admin: MakeAdmin) -> None:
    with services.db.session() as session:
        admin, first = admins.create_admin(
            services, session, COMMAND_LINE, email="ann@msp.example", role=Role.MSP_OWNER
        )
        second = admins.new_setup_link(services, session, COMMAND_LINE, admin)
        with pytest.raises(TokenInvalid):
            admins.check_setup_token(session, token_of(first))
        assert admins.check_setup_token(session, token_of(second)).admin_id == admin.id


# --- invitations by email ----------------------------------------------------------------------


def test_invite_admin_emails_a_working_setup_link(services: Blink, smtp: SmtpServer) -> None:
    from blink_sms.messaging.email import SmtpSender

    mailing = dataclasses.replace(services, email=SmtpSender(smtp.url, "console@msp.example"))
    with services.db.session() as session:
        admin = admins.invite_admin(
            mailing, session, COMMAND_LINE, email="tom@msp.example", role=Role.MSP_TECHNICIAN
        )
    [mail] = smtp.mailbox.to("tom@msp.example")
    link = re.search(r"https://\S+/admin/setup/[A-Za-z0-9_-]+", mail.text)
    assert link is not None and "MSP technician" in mail.text
    with services.db.session() as session:
        assert admins.complete_setup(services, session, token_of(link.group()), PASSWORD)
    assert token_of(link.group()) not in everything_stored(services)
    assert [e.detail["admin_id"] for e in events(services, "admin.invitation_email_sent")] == [
        admin.id
    ]


def test_a_failed_invitation_withdraws_the_link_and_can_be_sent_again(
    services: Blink, smtp: SmtpServer
) -> None:
    from blink_sms.messaging.email import SmtpSender

    mailing = dataclasses.replace(services, email=SmtpSender(smtp.url, "console@msp.example"))
    smtp.mailbox.refuse.add("tom@msp.example")
    with services.db.session() as session, pytest.raises(Conflict) as failed:
        admins.invite_admin(
            mailing, session, COMMAND_LINE, email="tom@msp.example", role=Role.MSP_OWNER
        )
    assert "could not be sent" in str(failed.value)
    with services.db.session() as session:
        admin = session.execute(select(Admin)).scalar_one()
        assert session.execute(select(AdminToken)).first() is None
        smtp.mailbox.refuse.clear()
        admins.resend_invitation(mailing, session, COMMAND_LINE, admin)
    [mail] = smtp.mailbox.to("tom@msp.example")
    link = re.search(r"https://\S+/admin/setup/([A-Za-z0-9_-]+)", mail.text)
    assert link is not None
    with services.db.session() as session:
        assert admins.check_setup_token(session, link.group(1)).admin_id == admin.id
    assert len(events(services, "admin.invitation_email_failed")) == 1


def test_invite_admin_says_when_email_is_off(services: Blink) -> None:
    silent = dataclasses.replace(services, email=None)
    with services.db.session() as session, pytest.raises(Conflict) as off:
        admins.invite_admin(
            silent, session, COMMAND_LINE, email="tom@msp.example", role=Role.MSP_OWNER
        )
    assert "email is off" in str(off.value)
    with services.db.session() as session:
        assert session.execute(select(Admin)).first() is None


# --- signing in ----------------------------------------------------------------------------------


def test_sign_in_with_the_right_password(services: Blink, make_admin: MakeAdmin) -> None:
    make_admin("ann@msp.example")
    admin = sign_in(services, " ANN@msp.example ")
    assert admin.last_sign_in_at is not None
    [event] = events(services, "admin.signed_in")
    assert event.actor == f"admin:{admin.id}:ann@msp.example"
    assert event.detail["source"] == IP


def test_wrong_password_and_unknown_email_get_the_same_refusal(
    services: Blink, make_admin: MakeAdmin
) -> None:
    make_admin("ann@msp.example")
    wrong = refusal(services, "ann@msp.example", "not the password at all")
    unknown = refusal(services, "nobody@msp.example", PASSWORD)
    assert wrong.reason == unknown.reason == "credentials"
    assert str(wrong) == str(unknown) and wrong.retry_after is None is unknown.retry_after
    failed = events(services, "admin.sign_in_failed")
    assert len(failed) == 2
    stored = everything_stored(services)
    assert "not the password at all" not in stored and "nobody@msp.example" not in stored


def test_an_unknown_email_costs_as_much_time_as_a_wrong_password(
    services: Blink, make_admin: MakeAdmin
) -> None:
    make_admin("ann@msp.example")

    def fastest(email: str) -> float:
        times = []
        for attempt in range(3):
            started = time.perf_counter()
            refusal(services, email, f"wrong password {attempt}", ip=f"198.51.100.{attempt}")
            times.append(time.perf_counter() - started)
        return min(times)

    # Without the dummy hash an unknown address answers ~50 times faster than argon2.
    assert fastest("nobody@msp.example") > 0.5 * fastest("ann@msp.example")


def test_an_account_is_throttled_after_five_failures(
    services: Blink, make_admin: MakeAdmin
) -> None:
    make_admin("ann@msp.example")
    for attempt in range(admins.ACCOUNT_FAILURES):
        ip = f"198.51.100.{attempt}"  # from different addresses: the account counts
        assert refusal(services, "ann@msp.example", "guess", ip=ip).reason == "credentials"
    throttled = refusal(services, "ann@msp.example", PASSWORD, ip="192.0.2.1")
    assert throttled.reason == "throttled"
    assert throttled.retry_after is not None and 0 < throttled.retry_after <= 15 * 60
    # An unknown address is throttled alike: the limit does not tell who has an account.
    for _ in range(admins.ACCOUNT_FAILURES):
        refusal(services, "nobody@msp.example", "guess", ip="192.0.2.2")
    assert refusal(services, "nobody@msp.example", "guess", ip="192.0.2.3").reason == "throttled"


def test_a_success_clears_the_account_count(services: Blink, make_admin: MakeAdmin) -> None:
    make_admin("ann@msp.example")
    for _round in range(2):  # 8 failures in all, never 5 in a row
        for _ in range(admins.ACCOUNT_FAILURES - 1):
            refusal(services, "ann@msp.example", "guess")
        sign_in(services, "ann@msp.example")


def test_an_ip_address_is_throttled_after_twenty_failures(
    services: Blink, make_admin: MakeAdmin
) -> None:
    make_admin("ann@msp.example")
    for n in range(admins.IP_FAILURES - 1):
        refusal(services, f"user{n}@msp.example", "guess")
    sign_in(services, "ann@msp.example")  # a success does not reset the address's count
    refusal(services, "someone@msp.example", "guess")
    throttled = refusal(services, "ann@msp.example", PASSWORD)
    assert throttled.reason == "throttled" and throttled.retry_after
    assert sign_in(services, "ann@msp.example", ip="192.0.2.9")  # another address


def test_a_disabled_account_is_named_only_after_the_right_password(
    services: Blink, make_admin: MakeAdmin
) -> None:
    make_admin("owner@msp.example")
    tech = make_admin("tech@msp.example", Role.MSP_TECHNICIAN)
    with services.db.session() as session:
        admins.disable_admin(session, COMMAND_LINE, session.get(Admin, tech.id))  # type: ignore[arg-type]
    assert refusal(services, "tech@msp.example", "guess").reason == "credentials"
    assert refusal(services, "tech@msp.example").reason == "disabled"


def test_a_hash_with_old_parameters_is_replaced_at_sign_in(
    services: Blink, make_admin: MakeAdmin
) -> None:
    admin = make_admin("ann@msp.example")
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    with services.db.session() as session:
        session.execute(update(Admin).values(password_hash=weak))
        session.commit()
    assert admins.HASHER.check_needs_rehash(weak)
    signed_in = sign_in(services, "ann@msp.example")
    assert signed_in.id == admin.id and signed_in.password_hash != weak
    assert signed_in.password_hash is not None
    assert not admins.HASHER.check_needs_rehash(signed_in.password_hash)
    sign_in(services, "ann@msp.example")


def test_an_admin_without_a_password_cannot_sign_in(services: Blink) -> None:
    with services.db.session() as session:
        admins.create_admin(
            services, session, COMMAND_LINE, email="ann@msp.example", role=Role.MSP_OWNER
        )
    assert refusal(services, "ann@msp.example", "").reason == "credentials"


# --- authenticator app (TOTP) and recovery codes -----------------------------------------------


def test_needs_second_factor(services: Blink, make_admin: MakeAdmin, world: World) -> None:
    owner = make_admin("owner@msp.example")
    tech = make_admin("tech@msp.example", Role.MSP_TECHNICIAN)
    client_admin = make_admin("ca@contoso.example", Role.CLIENT_ADMIN, client_id=world.client.id)
    assert second_factor.needs_second_factor(owner)
    assert second_factor.needs_second_factor(tech)
    assert not second_factor.needs_second_factor(client_admin)
    enrol_totp(services, client_admin)
    with services.db.session() as session:
        assert second_factor.needs_second_factor(session.get(Admin, client_admin.id))  # type: ignore[arg-type]


def test_begin_totp_gives_an_otpauth_uri_and_a_qr_code(
    services: Blink, make_admin: MakeAdmin
) -> None:
    admin = make_admin("ann@msp.example")
    enrolment = second_factor.begin_totp(services, admin)
    assert len(enrolment.secret) >= 32
    assert enrolment.uri.startswith("otpauth://totp/Blink%20SMS:ann%40msp.example?")
    assert f"secret={enrolment.secret}" in enrolment.uri and "issuer=Blink%20SMS" in enrolment.uri
    assert enrolment.qr_svg.startswith("<svg") and "<script" not in enrolment.qr_svg
    with services.db.session() as session:
        assert session.get(Admin, admin.id).totp_secret_encrypted is None  # type: ignore[union-attr]


def test_confirm_totp_stores_the_secret_encrypted_and_returns_recovery_codes(
    services: Blink, make_admin: MakeAdmin
) -> None:
    admin = make_admin("ann@msp.example")
    enrolment = second_factor.begin_totp(services, admin)
    with services.db.session() as session:
        fresh = session.get(Admin, admin.id)
        assert fresh is not None
        with pytest.raises(Invalid) as wrong:
            second_factor.confirm_totp(
                services, session, fresh, enrolment.secret, wrong_code(enrolment.secret)
            )
        assert wrong.value.field == "code"
        assert fresh.totp_confirmed_at is None
        codes = second_factor.confirm_totp(
            services, session, fresh, enrolment.secret, pyotp.TOTP(enrolment.secret).now()
        )
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(RECOVERY.fullmatch(code) for code in codes)
    stored = everything_stored(services)
    assert enrolment.secret not in stored
    assert not any(code in stored or code.replace("-", "") in stored for code in codes)
    with services.db.session() as session:
        fresh = session.get(Admin, admin.id)
        assert fresh is not None and fresh.totp_secret_encrypted is not None
        assert services.secrets.decrypt_json(fresh.totp_secret_encrypted) == {
            "totp": enrolment.secret
        }
        hashes = session.execute(select(RecoveryCode.code_hash)).scalars().all()
    assert len(hashes) == 10 and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes)
    assert second_factor.has_second_factor(fresh)


def test_a_totp_code_is_not_accepted_twice(services: Blink, make_admin: MakeAdmin) -> None:
    admin = make_admin("ann@msp.example")
    secret, _ = enrol_totp(services, admin)
    app_ = pyotp.TOTP(secret)
    assert not totp(services, admin.id, app_.now())  # spent on the enrolment
    later = app_.at(time.time() + 30)  # one step ahead: within the window
    assert totp(services, admin.id, later)
    assert not totp(services, admin.id, later)
    assert not totp(services, admin.id, app_.at(time.time() - 30))  # older than the last one
    verified = events(services, "admin.second_factor_verified")
    assert [e.detail["method"] for e in verified] == ["totp"]


def test_wrong_totp_codes_are_throttled(services: Blink, make_admin: MakeAdmin) -> None:
    admin = make_admin("ann@msp.example")
    secret, _ = enrol_totp(services, admin)
    for _ in range(second_factor.SECOND_FACTOR_FAILURES):
        assert not totp(services, admin.id, wrong_code(secret))
    with pytest.raises(SignInRefused) as throttled:
        totp(services, admin.id, pyotp.TOTP(secret).at(time.time() + 30))
    assert throttled.value.reason == "throttled" and throttled.value.retry_after
    failed = events(services, "admin.second_factor_failed")
    assert len(failed) == second_factor.SECOND_FACTOR_FAILURES
    assert all("code" not in e.detail for e in failed)


def test_a_recovery_code_works_once(services: Blink, make_admin: MakeAdmin) -> None:
    admin = make_admin("ann@msp.example")
    _, codes = enrol_totp(services, admin)

    def use(code: str) -> bool:
        with services.db.session() as session:
            fresh = session.get(Admin, admin.id)
            assert fresh is not None
            return second_factor.use_recovery_code(session, fresh, code)

    assert use(codes[0])
    assert not use(codes[0])
    assert use(" " + codes[1].upper().replace("-", " ") + " ")  # as typed from paper
    assert not use("abcd-efgh-jkmn")
    [first, second] = events(services, "admin.second_factor_verified")
    assert first.detail["method"] == "recovery_code" and second.detail["codes_left"] == 8
    with services.db.session() as session:
        assert second_factor.recovery_codes_left(session, admin) == 8
        fresh = session.get(Admin, admin.id)
        assert fresh is not None
        new_codes = second_factor.regenerate_recovery_codes(session, fresh)
    assert not use(codes[2])  # the old ones stopped working
    assert use(new_codes[0])


def test_verify_second_factor_takes_an_app_code_or_a_recovery_code(
    services: Blink, make_admin: MakeAdmin
) -> None:
    admin = make_admin("ann@msp.example")
    secret, codes = enrol_totp(services, admin)
    with services.db.session() as session:
        fresh = session.get(Admin, admin.id)
        assert fresh is not None
        code = pyotp.TOTP(secret).at(time.time() + 30)
        assert second_factor.verify_second_factor(
            services, session, fresh, code[:3] + " " + code[3:]
        )
        assert second_factor.verify_second_factor(services, session, fresh, codes[3], ip=IP)


# --- passkeys -------------------------------------------------------------------------------------


def register(services: Blink, admin: Admin, key: SoftAuthenticator, name: str = "YubiKey") -> None:
    with services.db.session() as session:
        fresh = session.get(Admin, admin.id)
        assert fresh is not None
        options, challenge = second_factor.passkey_registration_options(services, session, fresh)
        second_factor.register_passkey(
            services,
            session,
            fresh,
            name=name,
            credential_json=key.create(options),
            challenge=challenge,
        )


def passkey_sign_in(services: Blink, admin: Admin, answer: Callable[[str], str]) -> bool:
    with services.db.session() as session:
        fresh = session.get(Admin, admin.id)
        assert fresh is not None
        options, challenge = second_factor.passkey_authentication_options(services, session, fresh)
        return second_factor.verify_passkey(services, session, fresh, answer(options), challenge)


def test_a_passkey_signs_in_and_its_counter_moves_on(
    services: Blink, make_admin: MakeAdmin
) -> None:
    admin = make_admin("ann@msp.example")
    key = SoftAuthenticator(origin=PUBLIC_URL)
    with services.db.session() as session, pytest.raises(Conflict):
        second_factor.passkey_registration_options(services, session, admin)  # app first
    enrol_totp(services, admin)
    register(services, admin, key)
    with services.db.session() as session:
        stored = session.execute(select(Passkey)).scalar_one()
        assert stored.name == "YubiKey" and stored.sign_count == 0
        assert second_factor.has_passkeys(session, admin)
    assert passkey_sign_in(services, admin, key.get)
    assert passkey_sign_in(services, admin, key.get)
    with services.db.session() as session:
        stored = session.execute(select(Passkey)).scalar_one()
    assert stored.sign_count == 2 and stored.last_used_at is not None
    [event] = events(services, "admin.passkey_registered")
    assert event.detail["name"] == "YubiKey"


def test_a_removed_passkey_no_longer_signs_in(services: Blink, make_admin: MakeAdmin) -> None:
    admin = make_admin("ann@msp.example")
    other = make_admin("tech@msp.example", Role.MSP_TECHNICIAN)
    enrol_totp(services, admin)
    key = SoftAuthenticator(origin=PUBLIC_URL)
    register(services, admin, key)
    with services.db.session() as session:
        [passkey] = second_factor.list_passkeys(session, admin)
        with pytest.raises(Forbidden):  # a technician cannot touch an owner's passkeys
            second_factor.remove_passkey(session, admins.actor_for(other), admin, passkey.id)
        second_factor.remove_passkey(session, admins.actor_for(admin), admin, passkey.id)
        assert not second_factor.has_passkeys(session, admin)
        with pytest.raises(Conflict):
            second_factor.passkey_authentication_options(services, session, admin)
    [event] = events(services, "admin.passkey_removed")
    assert event.detail["name"] == "YubiKey"


def test_a_replayed_or_foreign_passkey_answer_is_refused(
    services: Blink, make_admin: MakeAdmin
) -> None:
    admin = make_admin("ann@msp.example")
    enrol_totp(services, admin)
    key = SoftAuthenticator(origin=PUBLIC_URL)
    register(services, admin, key)
    captured: list[str] = []

    def record(options: str) -> str:
        captured.append(key.get(options))
        return captured[-1]

    assert passkey_sign_in(services, admin, record)
    assert not passkey_sign_in(services, admin, lambda _options: captured[0])  # old challenge
    phishing = SoftAuthenticator(origin="https://sms.example.com.evil.example")
    phishing.key, phishing.credential_id, phishing.sign_count = key.key, key.credential_id, 5
    assert not passkey_sign_in(services, admin, phishing.get)  # signed for another origin
    stranger = SoftAuthenticator(origin=PUBLIC_URL, credential_id=key.credential_id)
    stranger.sign_count = 10
    assert not passkey_sign_in(services, admin, stranger.get)  # right id, wrong key
    assert passkey_sign_in(services, admin, key.get)


def test_a_passkey_registered_for_another_site_is_refused(
    services: Blink, make_admin: MakeAdmin
) -> None:
    admin = make_admin("ann@msp.example")
    enrol_totp(services, admin)
    key = SoftAuthenticator(origin="https://evil.example")
    with services.db.session() as session:
        fresh = session.get(Admin, admin.id)
        assert fresh is not None
        options, challenge = second_factor.passkey_registration_options(services, session, fresh)
        with pytest.raises(Invalid) as refused:
            second_factor.register_passkey(
                services,
                session,
                fresh,
                name="Key",
                credential_json=key.create(options),
                challenge=challenge,
            )
    assert refused.value.field == "credential"


# --- sessions, reset of the second factor ----------------------------------------------------


def test_sign_out_everywhere_changes_the_epoch(services: Blink, make_admin: MakeAdmin) -> None:
    owner = make_admin("owner@msp.example")
    tech = make_admin("tech@msp.example", Role.MSP_TECHNICIAN)
    epoch = tech.session_epoch
    assert admins.session_is_current(tech, epoch)
    with services.db.session() as session:
        fresh = session.get(Admin, tech.id)
        assert fresh is not None
        assert admins.sign_out_everywhere(session, admins.actor_for(fresh), fresh) == epoch + 1
        assert not admins.session_is_current(fresh, epoch)
        assert admins.session_is_current(fresh, epoch + 1)
        boss = session.get(Admin, owner.id)
        assert boss is not None
        with pytest.raises(Forbidden):  # a technician cannot end an owner's sessions
            admins.sign_out_everywhere(session, admins.actor_for(fresh), boss)
    assert len(events(services, "admin.signed_out_everywhere")) == 1


def test_reset_second_factors_lets_a_locked_out_owner_enrol_again(
    services: Blink, make_admin: MakeAdmin
) -> None:
    admin = make_admin("ann@msp.example")
    enrol_totp(services, admin)
    register(services, admin, SoftAuthenticator(origin=PUBLIC_URL))
    with services.db.session() as session:
        fresh = session.get(Admin, admin.id)
        assert fresh is not None
        url = second_factor.reset_second_factors(services, session, COMMAND_LINE, fresh)
        assert fresh.totp_secret_encrypted is None and fresh.password_hash is None
        assert not admins.session_is_current(fresh, admin.session_epoch)
        assert session.execute(select(Passkey)).first() is None
        assert session.execute(select(RecoveryCode)).first() is None
    assert refusal(services, "ann@msp.example").reason == "credentials"
    with services.db.session() as session:
        admins.complete_setup(services, session, token_of(url), "a brand new password")
    again = sign_in(services, "ann@msp.example", "a brand new password")
    assert second_factor.needs_second_factor(again)
    assert not second_factor.has_second_factor(again)


# --- managing accounts -----------------------------------------------------------------------


def test_only_an_owner_may_list_admins(
    services: Blink, make_admin: MakeAdmin, world: World
) -> None:
    owner = make_admin("owner@msp.example")
    tech = make_admin("tech@msp.example", Role.MSP_TECHNICIAN)
    client_admin = make_admin("ca@contoso.example", Role.CLIENT_ADMIN, client_id=world.client.id)
    with services.db.session() as session:
        listed = admins.list_admins(session, admins.actor_for(owner))
        assert [a.email for a in listed] == [
            "ca@contoso.example",
            "owner@msp.example",
            "tech@msp.example",
        ]
        for outsider in (client_admin, tech):
            with pytest.raises(Forbidden):
                admins.list_admins(session, admins.actor_for(outsider))


def test_the_last_owner_cannot_be_removed_disabled_or_demoted(
    services: Blink, make_admin: MakeAdmin
) -> None:
    owner = make_admin("owner@msp.example")
    with services.db.session() as session:
        last = session.get(Admin, owner.id)
        assert last is not None
        for attempt in (
            lambda: admins.remove_admin(session, COMMAND_LINE, last),
            lambda: admins.disable_admin(session, COMMAND_LINE, last),
            lambda: admins.change_role(session, COMMAND_LINE, last, Role.MSP_TECHNICIAN),
        ):
            with pytest.raises(Conflict) as refused:
                attempt()
            assert "last active MSP owner" in str(refused.value)
            session.rollback()
        assert last.role is Role.MSP_OWNER and last.disabled_at is None
    second = make_admin("second@msp.example")
    with services.db.session() as session:
        actor = admins.actor_for(second)
        last = session.get(Admin, owner.id)
        assert last is not None
        assert admins.change_role(session, actor, last, Role.MSP_TECHNICIAN)
        assert last.session_epoch == owner.session_epoch + 1
        admins.remove_admin(session, actor, last)
        assert session.execute(select(Admin.email)).scalars().all() == ["second@msp.example"]
    [removed] = events(services, "admin.removed")
    assert removed.detail["email"] == "owner@msp.example"


def test_an_admin_cannot_disable_or_remove_themself(services: Blink, make_admin: MakeAdmin) -> None:
    owner = make_admin("owner@msp.example")
    make_admin("second@msp.example")
    with services.db.session() as session:
        me = session.get(Admin, owner.id)
        assert me is not None
        with pytest.raises(Conflict, match="your own account"):
            admins.disable_admin(session, admins.actor_for(me), me)
        with pytest.raises(Conflict, match="your own account"):
            admins.remove_admin(session, admins.actor_for(me), me)


def test_disabling_ends_sessions_and_links_and_enabling_restores(
    services: Blink, make_admin: MakeAdmin
) -> None:
    make_admin("owner@msp.example")
    with services.db.session() as session:
        tech, url = admins.create_admin(
            services, session, COMMAND_LINE, email="tech@msp.example", role=Role.MSP_TECHNICIAN
        )
        assert admins.disable_admin(session, COMMAND_LINE, tech)
        assert not admins.disable_admin(session, COMMAND_LINE, tech)  # already
        assert not admins.session_is_current(tech, 0)
        with pytest.raises(TokenInvalid):
            admins.check_setup_token(session, token_of(url))
        assert admins.disable_admin(session, COMMAND_LINE, tech, disabled=False)
        assert admins.session_is_current(tech, tech.session_epoch)
    assert [e.action for e in events(services, "admin.enabled")] == ["admin.enabled"]


def test_change_role_checks_the_client(
    services: Blink, make_admin: MakeAdmin, world: World
) -> None:
    make_admin("owner@msp.example")
    tech = make_admin("tech@msp.example", Role.MSP_TECHNICIAN)
    with services.db.session() as session:
        fresh = session.get(Admin, tech.id)
        assert fresh is not None
        with pytest.raises(Invalid):
            admins.change_role(session, COMMAND_LINE, fresh, Role.CLIENT_ADMIN)
        assert admins.change_role(
            session, COMMAND_LINE, fresh, Role.CLIENT_ADMIN, client=world.client
        )
        assert not admins.change_role(
            session, COMMAND_LINE, fresh, Role.CLIENT_ADMIN, client=world.client
        )
        assert fresh.client_id == world.client.id
    [event] = events(services, "admin.role_changed")
    assert event.detail["previous"] == "msp-technician" and event.client_id == world.client.id
