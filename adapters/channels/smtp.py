"""``SmtpChannel``: email through an SMTP server, plain text with an HTML alternative."""

from __future__ import annotations

import contextlib
import smtplib
import ssl
import threading
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from opcatflow.notifications.channel import DeliveryError, Outgoing


class SmtpChannel:
    """Sends each message as one email over a kept-open SMTP connection.

    The ``Message-ID`` is derived from the idempotency key, so a message sent twice (at least
    once delivery) carries the same id both times; ``X-Opcatflow-Idempotency-Key`` repeats it.

    Args:
        host, port: the server.
        sender: the ``From`` header, e.g. ``NPM <noreply@npm.example>``.
        starttls: upgrade the connection with STARTTLS (refuse to go on without it).
        use_ssl: connect over TLS from the start (SMTPS, port 465).
        username, password: log in after (STARTTLS or SSL).
        timeout: seconds for connecting and for each command.
        ssl_context: TLS settings; by default the system's trusted certificates.
    """

    name = "email"

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        sender: str,
        starttls: bool = False,
        use_ssl: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if starttls and use_ssl:
            raise ValueError("choose STARTTLS or SSL, not both")
        self.host = host
        self.port = port
        self.sender = sender
        self.starttls = starttls
        self.use_ssl = use_ssl
        self.username = username
        self.password = password
        self.timeout = timeout
        self.ssl_context = ssl_context
        self._smtp: smtplib.SMTP | None = None
        self._lock = threading.Lock()

    def message(self, message: Outgoing) -> EmailMessage:
        """The email for one outgoing message."""
        if not message.address:
            raise DeliveryError(f"message {message.id} has no email address", permanent=True)
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = formataddr((message.name or "", message.address))
        email["Subject"] = message.subject
        email["Date"] = format_datetime(message.created_at)
        email["Message-ID"] = f"<{message.idempotency_key}@opcatflow>"
        email["X-Opcatflow-Idempotency-Key"] = message.idempotency_key
        email["X-Opcatflow-Event"] = message.event
        email.set_content(message.text)
        if message.html:
            email.add_alternative(message.html, subtype="html")
        if message.locale:  # after the content: set_content drops Content-* headers
            email["Content-Language"] = message.locale
        return email

    def _connect(self) -> smtplib.SMTP:
        context = self.ssl_context or ssl.create_default_context()
        smtp: smtplib.SMTP
        if self.use_ssl:
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            smtp.ehlo()
            if self.starttls:
                smtp.starttls(context=context)  # raises if the server does not offer it
                smtp.ehlo()
            if self.username is not None:
                smtp.login(self.username, self.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, message: Outgoing) -> None:
        email = self.message(message)
        with self._lock:
            for retry in (False, True):
                fresh = retry
                if self._smtp is None:
                    try:
                        self._smtp = self._connect()
                    except smtplib.SMTPAuthenticationError as err:
                        raise DeliveryError(f"SMTP login refused: {_reply(err)}") from err
                    except (OSError, smtplib.SMTPException) as err:
                        raise DeliveryError(f"cannot reach the SMTP server: {err}") from err
                    fresh = True
                try:
                    self._smtp.send_message(email)
                    return
                except smtplib.SMTPServerDisconnected as err:
                    self._drop()
                    if fresh:
                        raise DeliveryError(f"SMTP server disconnected: {err}") from err
                    # a kept-open connection the server closed meanwhile: one fresh try
                except smtplib.SMTPRecipientsRefused as err:
                    codes = [code for code, _ in err.recipients.values()]
                    raise DeliveryError(
                        f"recipient refused: {_codes(err)}", permanent=all(c >= 500 for c in codes)
                    ) from err
                except smtplib.SMTPResponseException as err:
                    self._drop()
                    raise DeliveryError(
                        f"SMTP error {_reply(err)}", permanent=err.smtp_code >= 500
                    ) from err
                except (OSError, smtplib.SMTPException) as err:
                    self._drop()
                    raise DeliveryError(f"SMTP failure: {err}") from err

    def _drop(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.close()
            finally:
                self._smtp = None

    def close(self) -> None:
        with self._lock:
            if self._smtp is not None:
                with contextlib.suppress(OSError, smtplib.SMTPException):
                    self._smtp.quit()
                self._drop()


def _reply(err: smtplib.SMTPResponseException) -> str:
    text = err.smtp_error.decode(errors="replace") if isinstance(err.smtp_error, bytes) else ""
    return f"{err.smtp_code} {text}".strip()


def _codes(err: smtplib.SMTPRecipientsRefused) -> str:
    return ", ".join(f"{addr}: {code}" for addr, (code, _) in err.recipients.items())
