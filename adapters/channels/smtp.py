"""``SmtpChannel``: email through an SMTP server, plain text with an HTML alternative."""

from __future__ import annotations

import base64
import contextlib
import smtplib
import ssl
import threading
from email.utils import format_datetime, formataddr, parseaddr

from opcatflow.notifications.channel import Attachment, DeliveryError, Outgoing


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
        self._from = parseaddr(sender)[1]
        self._smtp: smtplib.SMTP | None = None
        self._lock = threading.Lock()

    def message(self, message: Outgoing) -> bytes:
        """The email for one outgoing message: MIME, UTF-8 parts in base64, CRLF line ends.

        Written directly rather than through ``email.message``, whose header folding costs
        milliseconds per message.
        """
        if not message.address:
            raise DeliveryError(f"message {message.id} has no email address", permanent=True)
        key = message.idempotency_key
        headers = [
            ("From", _one_line(self.sender)),
            ("To", _mailbox(message.name or "", message.address)),
            ("Subject", _encoded(message.subject)),
            ("Date", format_datetime(message.created_at)),
            ("Message-ID", f"<{key}@opcatflow>"),
            ("X-Opcatflow-Idempotency-Key", key),
            ("X-Opcatflow-Event", _one_line(message.event)),
            ("MIME-Version", "1.0"),
        ]
        if message.locale:
            headers.append(("Content-Language", _one_line(message.locale)))
        lines = [f"{name}: {value}" for name, value in headers]
        if message.attachments:
            mixed = f"=_opcatflow_mixed_{key[:32]}"
            lines += [f'Content-Type: multipart/mixed; boundary="{mixed}"', ""]
            lines += [f"--{mixed}", *_body(message, key)]
            for attachment in message.attachments:
                lines += [f"--{mixed}", *_attachment(attachment)]
            lines.append(f"--{mixed}--")
        else:
            lines += _body(message, key)
        return ("\r\n".join(lines) + "\r\n").encode("ascii")

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
        address = message.address or ""
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
                    self._smtp.sendmail(self._from, [address], email)
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


def _one_line(value: str) -> str:
    return " ".join(value.splitlines())  # no header injection through a name or subject


def _encoded(text: str) -> str:
    """RFC 2047 encoded words (base64, at most 45 bytes each) for non-ASCII header text."""
    text = _one_line(text)
    if text.isascii():
        return text
    words, chunk = [], b""
    for char in text:
        encoded = char.encode("utf-8")
        if len(chunk) + len(encoded) > 45:
            words.append(chunk)
            chunk = b""
        chunk += encoded
    words.append(chunk)
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(w).decode()}?=" for w in words)


def _mailbox(name: str, address: str) -> str:
    name = _one_line(name)
    if name.isascii():
        return formataddr((name, address))
    return f"{_encoded(name)} <{address}>"


def _body(message: Outgoing, key: str) -> list[str]:
    """The text part, or text and HTML as alternatives."""
    if message.html is None:
        return _part("plain", message.text)
    boundary = f"=_opcatflow_{key[:32]}"
    lines = [f'Content-Type: multipart/alternative; boundary="{boundary}"', ""]
    for subtype, body in (("plain", message.text), ("html", message.html)):
        lines += [f"--{boundary}", *_part(subtype, body)]
    lines.append(f"--{boundary}--")
    return lines


def _attachment(attachment: Attachment) -> list[str]:
    name = "".join(c for c in attachment.name if c.isascii() and (c.isalnum() or c in "._-"))
    data = base64.b64encode(attachment.text.encode("utf-8")).decode()
    return [
        f'Content-Type: {_one_line(attachment.content_type)}; charset="utf-8"; name="{name}"',
        f'Content-Disposition: attachment; filename="{name}"',
        "Content-Transfer-Encoding: base64",
        "",
        *(data[i : i + 76] for i in range(0, len(data), 76)),
    ]


def _part(subtype: str, body: str) -> list[str]:
    data = base64.b64encode(body.encode("utf-8")).decode()
    return [
        f'Content-Type: text/{subtype}; charset="utf-8"',
        "Content-Transfer-Encoding: base64",
        "",
        *(data[i : i + 76] for i in range(0, len(data), 76)),
    ]
