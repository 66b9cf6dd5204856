"""Settings.from_env: defaults, refusals that name the variable, *_FILE secrets, .env."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from blink_sms.settings import Settings, SettingsError

KEY = "k" * 40
SID = "AC" + "0123456789abcdef" * 2
ROOT = Path(__file__).resolve().parents[2]


def read(tmp_path: Path | None = None, **variables: str) -> Settings:
    """Settings from exactly these BLINK_* variables (and a .env in tmp_path, if given)."""
    environ = {"BLINK_SECRET_KEY": KEY} | {f"BLINK_{k}": v for k, v in variables.items()}
    environ = {k: v for k, v in environ.items() if v != "<unset>"}
    dotenv = tmp_path / ".env" if tmp_path is not None else None
    return Settings.from_env(environ, dotenv=dotenv)


def refusal(**variables: str) -> SettingsError:
    with pytest.raises(SettingsError) as caught:
        read(**variables)
    return caught.value


# --- defaults ----------------------------------------------------------------------------


def test_only_the_secret_key_is_needed_in_development() -> None:
    settings = read()
    assert settings.secret_key == KEY
    assert settings.env == "development" and not settings.production
    assert settings.database_url == "sqlite:///blink-sms.sqlite"
    assert settings.redis_url is None
    assert settings.public_url == "http://127.0.0.1:8000"
    assert settings.sms_backend == "twilio"
    assert settings.log_format == "console"
    assert settings.log_level == "INFO"
    assert settings.job_retry_intervals == (10, 30, 90)
    assert not settings.twilio_configured


def test_production_logs_json_by_default() -> None:
    settings = read(ENV="production", PUBLIC_URL="https://sms.example.com/")
    assert settings.production
    assert settings.log_format == "json"
    assert settings.public_url == "https://sms.example.com"


def test_choices_are_case_insensitive_and_the_log_level_is_upper_case() -> None:
    settings = read(ENV="Test", LOG_LEVEL="debug", SMS_BACKEND="CONSOLE")
    assert (settings.env, settings.log_level, settings.sms_backend) == ("test", "DEBUG", "console")


def test_twilio_is_configured_with_a_sid_and_a_token() -> None:
    settings = read(TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN="t" * 32)
    assert settings.twilio_configured
    assert settings.twilio_account_sid == SID


def test_the_repr_of_settings_hides_the_secrets() -> None:
    settings = read(TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN="Auth!Token" + "t" * 22)
    shown = repr(settings)
    assert KEY not in shown and "Auth!Token" not in shown
    assert SID in shown


# --- the secret key ------------------------------------------------------------------------


def test_a_missing_secret_key_names_the_variable() -> None:
    error = refusal(SECRET_KEY="<unset>")
    assert str(error).startswith("BLINK_SECRET_KEY: missing")
    assert error.variable == "BLINK_SECRET_KEY"


def test_a_blank_secret_key_counts_as_missing() -> None:
    assert str(refusal(SECRET_KEY="   ")).startswith("BLINK_SECRET_KEY: missing")


def test_a_short_secret_key_is_refused() -> None:
    error = refusal(SECRET_KEY="k" * 31)
    assert str(error).startswith("BLINK_SECRET_KEY: too short")


# --- URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "mysql://blink@db.example.com/blink"),
        ("DATABASE_URL", "blink.sqlite"),
        ("REDIS_URL", "http://x"),
        ("REDIS_URL", "redis://"),
        ("REDIS_URL", "unix://"),
        ("PUBLIC_URL", "sms.example.com"),
        ("PUBLIC_URL", "http://[::1"),
        ("SMTP_URL", "http://mail.example.com"),
        ("TWILIO_API_BASE_URL", "ftp://api.twilio.com"),
    ],
)
def test_a_malformed_url_names_its_variable(variable: str, value: str) -> None:
    error = refusal(**{variable: value})
    assert str(error).startswith(f"BLINK_{variable}: must be a")
    assert error.variable == f"BLINK_{variable}"


def test_a_refused_url_does_not_show_its_password() -> None:
    error = refusal(DATABASE_URL="mysql://blink:Db!Secret/9@db.example.com/blink")
    assert "Db!Secret" not in str(error)
    assert "mysql://blink:***@db.example.com/blink" in str(error)


@pytest.mark.parametrize(
    ("variable", "value", "attribute"),
    [
        ("DATABASE_URL", "postgresql+psycopg://blink:pw@db:5432/blink", "database_url"),
        ("DATABASE_URL", "sqlite:////var/lib/blink/blink.sqlite", "database_url"),
        ("REDIS_URL", "rediss://:pw@cache.example.com:6380/0", "redis_url"),
        ("REDIS_URL", "unix:///run/redis/redis.sock", "redis_url"),
        ("SMTP_URL", "smtps://mailer:pw@mail.example.com:465", "smtp_url"),
    ],
)
def test_well_formed_urls_are_kept_as_given(variable: str, value: str, attribute: str) -> None:
    assert getattr(read(**{variable: value}), attribute) == value


# --- choices -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ENV", "staging"),
        ("SMS_BACKEND", "carrier-pigeon"),
        ("LOG_LEVEL", "verbose"),
        ("LOG_FORMAT", "xml"),
    ],
)
def test_an_unknown_choice_names_its_variable_and_the_choices(variable: str, value: str) -> None:
    error = refusal(**{variable: value})
    assert str(error).startswith(f"BLINK_{variable}: must be one of")
    assert repr(value) in str(error)


def test_production_requires_a_public_url() -> None:
    error = refusal(ENV="production")
    assert str(error).startswith("BLINK_PUBLIC_URL: missing")


def test_production_requires_an_https_public_url() -> None:
    error = refusal(ENV="production", PUBLIC_URL="http://sms.example.com")
    assert str(error).startswith("BLINK_PUBLIC_URL: must be an https:// URL in production")
    assert read(ENV="development", PUBLIC_URL="http://127.0.0.1:8000").public_url


def test_production_refuses_the_console_sms_backend() -> None:
    error = refusal(ENV="production", PUBLIC_URL="https://sms.example.com", SMS_BACKEND="console")
    assert str(error).startswith("BLINK_SMS_BACKEND:")


@pytest.mark.parametrize("sid", ["AC123", "SK" + "0" * 32, SID + "0"])
def test_a_twilio_account_sid_of_the_wrong_shape_is_refused(sid: str) -> None:
    error = refusal(TWILIO_ACCOUNT_SID=sid)
    assert str(error).startswith("BLINK_TWILIO_ACCOUNT_SID:")


# --- numbers -------------------------------------------------------------------------------


def test_job_retry_intervals_are_seconds_separated_by_commas() -> None:
    assert read(JOB_RETRY_INTERVALS="1,2,5").job_retry_intervals == (1, 2, 5)
    assert read(JOB_RETRY_INTERVALS=" 0, 60 ").job_retry_intervals == (0, 60)


@pytest.mark.parametrize("value", ["a,b", "1,,2", "1;2", "5,-1"])
def test_malformed_job_retry_intervals_are_refused(value: str) -> None:
    error = refusal(JOB_RETRY_INTERVALS=value)
    assert str(error).startswith("BLINK_JOB_RETRY_INTERVALS:")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("REPLIES_PER_HOUR", "ten"),
        ("REPLIES_PER_HOUR", "0"),
        ("UNKNOWN_SENDER_REPLY_INTERVAL", "5"),
    ],
)
def test_whole_numbers_below_their_minimum_or_not_numbers_are_refused(
    variable: str, value: str
) -> None:
    assert str(refusal(**{variable: value})).startswith(f"BLINK_{variable}:")


# --- secrets from files ----------------------------------------------------------------------


def test_the_secret_key_and_auth_token_can_come_from_files(tmp_path: Path) -> None:
    (tmp_path / "key").write_text(KEY + "\n")
    (tmp_path / "token").write_text("Auth!Token" + "t" * 22 + "\n")
    settings = read(
        SECRET_KEY="<unset>",
        SECRET_KEY_FILE=str(tmp_path / "key"),
        TWILIO_ACCOUNT_SID=SID,
        TWILIO_AUTH_TOKEN_FILE=str(tmp_path / "token"),
    )
    assert settings.secret_key == KEY
    assert settings.twilio_auth_token == "Auth!Token" + "t" * 22


def test_a_value_and_a_file_for_the_same_secret_are_refused(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("t" * 32)
    error = refusal(TWILIO_AUTH_TOKEN="t" * 32, TWILIO_AUTH_TOKEN_FILE=str(tmp_path / "token"))
    assert str(error).startswith("BLINK_TWILIO_AUTH_TOKEN:")
    assert "BLINK_TWILIO_AUTH_TOKEN_FILE" in str(error)


def test_an_unreadable_secret_file_names_the_file_variable_and_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "key"
    error = refusal(SECRET_KEY="<unset>", SECRET_KEY_FILE=str(missing))
    assert str(error).startswith("BLINK_SECRET_KEY_FILE: cannot read")
    assert str(missing) in str(error)


def test_a_secret_file_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    error = refusal(SECRET_KEY="<unset>", SECRET_KEY_FILE=str(tmp_path))
    assert str(error).startswith("BLINK_SECRET_KEY_FILE: cannot read")


# --- .env ----------------------------------------------------------------------------------


def test_a_dotenv_file_supplies_defaults_and_the_real_environment_wins(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "BLINK_SECRET_KEY=" + "d" * 40 + "\n"
        "BLINK_LOG_LEVEL=debug\n"
        "BLINK_PUBLIC_URL=https://from-dotenv.example.com\n"
    )
    settings = read(tmp_path, SECRET_KEY="<unset>", PUBLIC_URL="https://real.example.com")
    assert settings.secret_key == "d" * 40
    assert settings.log_level == "DEBUG"
    assert settings.public_url == "https://real.example.com"


def test_a_real_value_wins_over_a_file_variable_from_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"BLINK_SECRET_KEY_FILE={tmp_path / 'absent'}\n")
    assert read(tmp_path).secret_key == KEY


def test_a_missing_dotenv_file_is_not_an_error(tmp_path: Path) -> None:
    assert read(tmp_path).secret_key == KEY


def test_the_default_environment_is_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BLINK_SECRET_KEY", "e" * 40)
    monkeypatch.setenv("BLINK_REPLIES_PER_HOUR", "3")
    settings = Settings.from_env(dotenv=None)
    assert settings.secret_key == "e" * 40 and settings.replies_per_hour == 3


# --- the entry points print one line ---------------------------------------------------------


def _environment_without_settings() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("BLINK_")}


def _assert_one_clear_line(stderr: str) -> None:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("blink-sms: BLINK_SECRET_KEY: missing"), stderr
    assert "Traceback" not in stderr


def test_the_command_line_refuses_bad_settings_with_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "blink-sms"), "db", "upgrade"],
        env=_environment_without_settings(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    _assert_one_clear_line(done.stderr)
    assert done.stdout == ""
    assert not (tmp_path / "blink-sms.sqlite").exists()


def test_the_wsgi_entry_point_refuses_bad_settings_with_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import blink_sms.wsgi"],
        env=_environment_without_settings() | {"PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    _assert_one_clear_line(done.stderr)


def test_the_msps_branding_is_read_and_checked() -> None:
    settings = read(BRAND_COLOR="#1E5BC6", BRAND_LOGO_URL="https://msp.example/logo.png")
    assert settings.brand_color == "#1E5BC6"
    assert settings.brand_logo_url == "https://msp.example/logo.png"
    assert refusal(BRAND_COLOR="blue").variable == "BLINK_BRAND_COLOR"
    assert refusal(BRAND_LOGO_URL="http://msp.example/logo.png").variable == "BLINK_BRAND_LOGO_URL"
