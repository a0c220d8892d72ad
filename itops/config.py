"""Settings from ITOPS_* environment variables, with an embedded default instance under var/.

With nothing set, itops runs from var/: SQLite in WAL mode and a secret key and an encryption key
generated on first start (mode 0600). Every setting can be overridden by an environment variable,
so scale-out (PostgreSQL, Redis, a real directory) is configuration only.
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

ROLE_NAMES = ("employee", "it_staff", "hr", "admin")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _bool(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name} must be true or false, not {value!r}")


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {value!r}") from None


def _choice(value: str, allowed: tuple[str, ...], name: str) -> str:
    value = value.strip().lower()
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _read_or_create_secret(path: Path, make) -> str:
    """Read a key file, creating it with mode 0600 on first start."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    # O_EXCL: two processes starting at once must not overwrite each other's key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def _secret_from_env(env: dict, name: str) -> str | None:
    """A secret given directly (ITOPS_X) or as a file path (ITOPS_X_FILE), as container platforms do."""
    if env.get(name):
        return env[name]
    file_path = env.get(name + "_FILE")
    if file_path:
        try:
            return Path(file_path).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE cannot be read: {exc.strerror}") from None
    return None


def parse_role_groups(value: str) -> dict[str, str]:
    """'admin=itops-admins,it_staff=itops-it' -> {'itops-admins': 'admin', 'itops-it': 'it_staff'}."""
    mapping: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        role, sep, group = item.partition("=")
        role, group = role.strip(), group.strip()
        if not sep or not group or role not in ROLE_NAMES:
            raise ConfigError(
                f"ITOPS_LDAP_ROLE_GROUPS entry {item!r} must look like role=group, role one of {', '.join(ROLE_NAMES)}"
            )
        mapping[group.lower()] = role
    return mapping


@dataclass(frozen=True)
class LdapSettings:
    url: str
    base_dn: str
    people_dn: str
    groups_dn: str
    bind_dn: str | None
    bind_password: str | None
    user_attribute: str
    role_groups: dict[str, str]
    default_role: str | None
    timeout: int

    def __repr__(self) -> str:  # the bind password must never reach a log line
        return f"LdapSettings(url={self.url!r}, base_dn={self.base_dn!r}, bind_dn={self.bind_dn!r})"


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str  # none | starttls | tls
    username: str | None
    password: str | None
    sender: str
    timeout: int

    def __repr__(self) -> str:  # the password must never reach a log line
        return f"SmtpSettings(host={self.host!r}, port={self.port}, security={self.security!r})"


SMTP_SECURITY = ("none", "starttls", "tls")


def _smtp_settings(env: dict) -> SmtpSettings | None:
    """Outgoing mail; without ITOPS_SMTP_HOST messages wait in the outbox until one is configured."""
    if not env.get("ITOPS_SMTP_HOST"):
        return None
    security = env.get("ITOPS_SMTP_SECURITY", "none").strip().lower()
    if security not in SMTP_SECURITY:
        raise ConfigError(f"ITOPS_SMTP_SECURITY must be one of {', '.join(SMTP_SECURITY)}")
    default_port = {"none": "25", "starttls": "587", "tls": "465"}[security]
    return SmtpSettings(
        host=env["ITOPS_SMTP_HOST"],
        port=_int(env.get("ITOPS_SMTP_PORT", default_port), "ITOPS_SMTP_PORT"),
        security=security,
        username=env.get("ITOPS_SMTP_USERNAME") or None,
        password=_secret_from_env(env, "ITOPS_SMTP_PASSWORD"),
        sender=env.get("ITOPS_MAIL_FROM", "itops@localhost"),
        timeout=_int(env.get("ITOPS_SMTP_TIMEOUT", "10"), "ITOPS_SMTP_TIMEOUT"),
    )


LDAP_FLAVOURS = ("openldap", "ad")


@dataclass(frozen=True)
class DirectorySettings:
    """How the directory domain writes accounts (itops/directory), on top of ITOPS_LDAP's connection."""
    flavour: str                   # openldap | ad
    disabled_dn: str | None        # where disabled accounts move; None: ou=disabled under the base DN
    start_tls: bool                # upgrade ldap:// with StartTLS (Active Directory refuses passwords otherwise)
    upn_suffix: str | None         # Active Directory userPrincipalName suffix, e.g. example.org
    grace_days: int                # a disabled account is deleted this many days later
    username_retention_days: int   # a deleted person's username is not given to anyone else for this long
    guard_accounts: int            # a batch disabling or deleting more accounts than this waits for approval,
    guard_percent: float           # ... and so does one touching more than this share of live accounts
    ticket_category: str           # the category (by name) of provisioning and return tickets: routes them to IT


def _directory_settings(env: dict) -> DirectorySettings:
    flavour = env.get("ITOPS_LDAP_FLAVOUR", "openldap").strip().lower()
    if flavour not in LDAP_FLAVOURS:
        raise ConfigError(f"ITOPS_LDAP_FLAVOUR must be one of {', '.join(LDAP_FLAVOURS)}")
    try:
        percent = float(env.get("ITOPS_DIRECTORY_GUARD_PERCENT", "5"))
    except ValueError:
        raise ConfigError("ITOPS_DIRECTORY_GUARD_PERCENT must be a number (a percentage)") from None
    return DirectorySettings(
        flavour=flavour,
        disabled_dn=env.get("ITOPS_LDAP_DISABLED_DN") or None,
        start_tls=_bool(env.get("ITOPS_LDAP_START_TLS", "false"), "ITOPS_LDAP_START_TLS"),
        upn_suffix=env.get("ITOPS_LDAP_UPN_SUFFIX") or None,
        grace_days=_int(env.get("ITOPS_DIRECTORY_GRACE_DAYS", "30"), "ITOPS_DIRECTORY_GRACE_DAYS"),
        username_retention_days=_int(env.get("ITOPS_DIRECTORY_USERNAME_RETENTION_DAYS", "365"),
                                     "ITOPS_DIRECTORY_USERNAME_RETENTION_DAYS"),
        guard_accounts=_int(env.get("ITOPS_DIRECTORY_GUARD_ACCOUNTS", "10"), "ITOPS_DIRECTORY_GUARD_ACCOUNTS"),
        guard_percent=percent,
        ticket_category=env.get("ITOPS_DIRECTORY_CATEGORY", "Hardware").strip(),
    )


SLA_PRIORITIES = ("critical", "high", "medium", "low")


def _sla_targets(raw: str) -> dict[str, tuple[int, int]]:
    """`critical=15/120,high=60/480` -> {"critical": (15, 120), ...}: first response / resolution in
    business minutes, per priority."""
    targets = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, _, minutes = item.partition("=")
        response, _, resolution = minutes.partition("/")
        if name.strip() not in SLA_PRIORITIES or not response.strip().isdigit() or not resolution.strip().isdigit():
            raise ConfigError(f"ITOPS_SLA_TARGETS entry {item!r} must look like priority=response/resolution "
                              f"(business minutes), priority one of {', '.join(SLA_PRIORITIES)}")
        targets[name.strip()] = (int(response), int(resolution))
    return targets


def _schedule(raw: str) -> dict[str, int | str]:
    """`outbox.send=10,directory.reconcile=03:15` -> per scheduler task, seconds between runs or a daily
    time (UTC). Task names are checked against the scheduler's list when it starts."""
    schedule: dict[str, int | str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, _, when = (part.strip() for part in item.partition("="))
        hour, colon, minute = when.partition(":")
        if name and when.isdigit() and int(when) >= 1:
            schedule[name] = int(when)
        elif name and colon and hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60:
            schedule[name] = f"{int(hour):02d}:{int(minute):02d}"
        else:
            raise ConfigError(f"ITOPS_SCHEDULE entry {item!r} must look like task=seconds or task=HH:MM")
    return schedule


def load_config(environ: dict | None = None) -> dict:
    """Build the Flask config mapping from the environment (os.environ by default)."""
    env = dict(os.environ if environ is None else environ)
    instance_dir = Path(env.get("ITOPS_INSTANCE_DIR") or PROJECT_ROOT / "var").resolve()
    if not instance_dir.exists():
        # Keys, the SQLite file and demo passwords live here: readable by the service user only.
        instance_dir.mkdir(mode=0o700, parents=True)

    database_url = env.get("ITOPS_DATABASE_URL") or f"sqlite:///{instance_dir / 'itops.db'}"
    if database_url.startswith("postgresql://"):
        # psycopg 3 is the supported driver; accept the plain URL operators usually paste.
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://"):]
    if database_url.startswith("sqlite:///"):
        Path(database_url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)

    secret_key = _secret_from_env(env, "ITOPS_SECRET_KEY") or _read_or_create_secret(
        instance_dir / "secret_key", lambda: secrets.token_urlsafe(48)
    )
    encryption_key = _secret_from_env(env, "ITOPS_ENCRYPTION_KEY") or _read_or_create_secret(
        instance_dir / "encryption_key", _new_fernet_key
    )

    ldap = None
    if env.get("ITOPS_LDAP_URL"):
        base_dn = env.get("ITOPS_LDAP_BASE_DN", "dc=example,dc=org")
        default_role = env.get("ITOPS_LDAP_DEFAULT_ROLE", "employee").strip() or None
        if default_role is not None and default_role not in ROLE_NAMES:
            raise ConfigError(f"ITOPS_LDAP_DEFAULT_ROLE must be empty or one of {', '.join(ROLE_NAMES)}")
        ldap = LdapSettings(
            url=env["ITOPS_LDAP_URL"],
            base_dn=base_dn,
            people_dn=env.get("ITOPS_LDAP_PEOPLE_DN", f"ou=people,{base_dn}"),
            groups_dn=env.get("ITOPS_LDAP_GROUPS_DN", f"ou=groups,{base_dn}"),
            bind_dn=env.get("ITOPS_LDAP_BIND_DN") or None,
            bind_password=_secret_from_env(env, "ITOPS_LDAP_BIND_PASSWORD"),
            user_attribute=env.get("ITOPS_LDAP_USER_ATTRIBUTE", "uid"),
            role_groups=parse_role_groups(
                env.get("ITOPS_LDAP_ROLE_GROUPS", "admin=itops-admins,it_staff=itops-it,hr=itops-hr")
            ),
            default_role=default_role,
            timeout=_int(env.get("ITOPS_LDAP_TIMEOUT", "5"), "ITOPS_LDAP_TIMEOUT"),
        )

    secure_cookies = _bool(env.get("ITOPS_SECURE_COOKIES", "false"), "ITOPS_SECURE_COOKIES")
    session_hours = _int(env.get("ITOPS_SESSION_HOURS", "12"), "ITOPS_SESSION_HOURS")
    return {
        "SECRET_KEY": secret_key,
        "ITOPS_ENCRYPTION_KEY": encryption_key,
        "ITOPS_INSTANCE_DIR": str(instance_dir),
        "SQLALCHEMY_DATABASE_URI": database_url,
        # A server connection can drop while pooled; a SQLite file cannot, and a ping costs each checkout a query.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": not database_url.startswith("sqlite")},
        "ITOPS_LDAP": ldap,
        "ITOPS_DIRECTORY": _directory_settings(env),
        "ITOPS_SESSION_HOURS": session_hours,
        "ITOPS_PASSWORD_HASH_METHOD": env.get("ITOPS_PASSWORD_HASH_METHOD", "scrypt"),
        "ITOPS_LOGIN_RATE_LIMIT": env.get("ITOPS_LOGIN_RATE_LIMIT", "10 per minute"),
        "ITOPS_METRICS_DIR": env.get("ITOPS_METRICS_DIR") or None,
        "ITOPS_METRICS_TOKEN": _secret_from_env(env, "ITOPS_METRICS_TOKEN"),
        "ITOPS_LOG_LEVEL": env.get("ITOPS_LOG_LEVEL", "INFO"),
        "ITOPS_BASE_URL": env.get("ITOPS_BASE_URL", "http://127.0.0.1:5000"),
        "ITOPS_SMTP": _smtp_settings(env),
        # Helpdesk: business hours for SLA clocks, reopen and auto-close windows, attachment size.
        "ITOPS_TIMEZONE": env.get("ITOPS_TIMEZONE", "UTC"),
        "ITOPS_BUSINESS_DAYS": env.get("ITOPS_BUSINESS_DAYS", "mon-fri"),
        "ITOPS_BUSINESS_HOURS": env.get("ITOPS_BUSINESS_HOURS", "09:00-17:00"),
        "ITOPS_HOLIDAYS": env.get("ITOPS_HOLIDAYS", ""),
        "ITOPS_SLA_TARGETS": _sla_targets(env.get("ITOPS_SLA_TARGETS", "")),
        "ITOPS_SCHEDULE": _schedule(env.get("ITOPS_SCHEDULE", "")),
        # Monitoring: damping (failed polls before down, good polls before up), probe threads per cycle,
        # when an agent's silence means down, and the ticket category incidents are filed in.
        "ITOPS_MONITOR_DOWN_AFTER": _int(env.get("ITOPS_MONITOR_DOWN_AFTER", "3"), "ITOPS_MONITOR_DOWN_AFTER"),
        "ITOPS_MONITOR_UP_AFTER": _int(env.get("ITOPS_MONITOR_UP_AFTER", "2"), "ITOPS_MONITOR_UP_AFTER"),
        "ITOPS_POLL_THREADS": _int(env.get("ITOPS_POLL_THREADS", "16"), "ITOPS_POLL_THREADS"),
        "ITOPS_MONITOR_AGENT_STALE_SECONDS": _int(env.get("ITOPS_MONITOR_AGENT_STALE_SECONDS", "9000"),
                                                  "ITOPS_MONITOR_AGENT_STALE_SECONDS"),
        "ITOPS_MONITOR_CATEGORY": env.get("ITOPS_MONITOR_CATEGORY", "Infrastructure"),
        # Where probes run: "threads" (the scheduler's own pool) or "celery" (workers, Redis as broker).
        "ITOPS_EXECUTOR": _choice(env.get("ITOPS_EXECUTOR", "threads"), ("threads", "celery"), "ITOPS_EXECUTOR"),
        "ITOPS_CELERY_BROKER_URL": env.get("ITOPS_CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"),
        "ITOPS_CELERY_QUEUE": env.get("ITOPS_CELERY_QUEUE", "itops"),
        "ITOPS_CELERY_WAIT_SECONDS": _int(env.get("ITOPS_CELERY_WAIT_SECONDS", "30"), "ITOPS_CELERY_WAIT_SECONDS"),
        "ITOPS_MONITOR_RAW_DAYS": _int(env.get("ITOPS_MONITOR_RAW_DAYS", "7"), "ITOPS_MONITOR_RAW_DAYS"),
        "ITOPS_MONITOR_HOURLY_DAYS": _int(env.get("ITOPS_MONITOR_HOURLY_DAYS", "365"), "ITOPS_MONITOR_HOURLY_DAYS"),
        "ITOPS_SCHEDULER_LEASE_SECONDS": _int(env.get("ITOPS_SCHEDULER_LEASE_SECONDS", "30"),
                                              "ITOPS_SCHEDULER_LEASE_SECONDS"),
        "ITOPS_SCHEDULER_THREADS": _int(env.get("ITOPS_SCHEDULER_THREADS", "4"), "ITOPS_SCHEDULER_THREADS"),
        "ITOPS_SCHEDULER_MISFIRE_GRACE_SECONDS": _int(env.get("ITOPS_SCHEDULER_MISFIRE_GRACE_SECONDS", "60"),
                                                      "ITOPS_SCHEDULER_MISFIRE_GRACE_SECONDS"),
        "ITOPS_TICKET_REOPEN_DAYS": _int(env.get("ITOPS_TICKET_REOPEN_DAYS", "7"), "ITOPS_TICKET_REOPEN_DAYS"),
        "ITOPS_TICKET_AUTOCLOSE_DAYS": _int(env.get("ITOPS_TICKET_AUTOCLOSE_DAYS", "5"),
                                            "ITOPS_TICKET_AUTOCLOSE_DAYS"),
        "ITOPS_ATTACHMENT_MAX_BYTES": _int(env.get("ITOPS_ATTACHMENT_MAX_BYTES", str(10 * 1024 * 1024)),
                                           "ITOPS_ATTACHMENT_MAX_BYTES"),
        # Flask, Flask-WTF and Flask-Limiter settings derived from the ITOPS_* ones.
        "MAX_CONTENT_LENGTH": _int(env.get("ITOPS_MAX_REQUEST_BYTES", str(16 * 1024 * 1024)), "ITOPS_MAX_REQUEST_BYTES"),
        "SESSION_COOKIE_NAME": "itops_session",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": secure_cookies,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": secure_cookies,
        "PERMANENT_SESSION_LIFETIME": session_hours * 3600,
        # Sessions end a fixed time after sign-in (request_auth), so re-signing the cookie on every
        # response would buy nothing and costs a signature per request.
        "SESSION_REFRESH_EACH_REQUEST": False,
        # CSRF is checked by itops' own before_request, so that bearer-token API calls can skip it.
        "WTF_CSRF_CHECK_DEFAULT": False,
        "WTF_CSRF_TIME_LIMIT": None,
        "RATELIMIT_STORAGE_URI": env.get("ITOPS_RATELIMIT_STORAGE_URL", "memory://"),
        "RATELIMIT_HEADERS_ENABLED": True,
        # flask-smorest: the OpenAPI document lives under the API prefix; the docs page is ours.
        "API_TITLE": "itops API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.1.0",
        "OPENAPI_URL_PREFIX": "/api/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
    }


def _new_fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()
