//! E-mail over SMTP, as the operator configures it: `SAFEGPT_SMTP_URL` is
//! `smtp://USER:PASSWORD@HOST:PORT` (STARTTLS when the server offers it; with a password,
//! required: the password is never sent in clear), `smtps://…` (TLS
//! from the first byte) or `smtp+plain://…` (no TLS: only to a server on loopback, for test
//! servers), and `SAFEGPT_SMTP_FROM` the sender.

use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

/// The operator's SMTP settings, parsed; the password never leaves this value but to the server.
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub user: Option<String>,
    password: Option<SecretString>,
    pub from: Mailbox,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `smtp://`: STARTTLS when offered.
    StartTlsWhenOffered,
    /// `smtps://`: TLS from the start.
    Tls,
    /// `smtp+plain://`: none, loopback only.
    Plain,
}

/// A user name or password as written in the URL (`%40` for `@`).
fn decode(raw: &str) -> String {
    percent_encoding::percent_decode_str(raw).decode_utf8_lossy().into_owned()
}

impl SmtpSettings {
    /// Parses the two operator settings; the error names the setting and the fix.
    pub fn parse(url: &str, from: Option<&str>) -> Result<SmtpSettings, String> {
        let bad = |why: String| format!("SAFEGPT_SMTP_URL: {why}");
        let parsed = Url::parse(url.trim())
            .map_err(|e| bad(format!("not a URL ({e}); give one like smtp://user:password@mail.example.org:587")))?;
        let (security, default_port) = match parsed.scheme() {
            "smtp" => (Security::StartTlsWhenOffered, 587),
            "smtps" => (Security::Tls, 465),
            "smtp+plain" => (Security::Plain, 25),
            other => return Err(bad(format!("scheme '{other}' is not one of smtp, smtps, smtp+plain"))),
        };
        let host = parsed.host_str().filter(|h| !h.is_empty()).ok_or_else(|| bad("no host".into()))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        if security == Security::Plain && !crate::policy::is_loopback_host(&parsed) {
            return Err(bad(format!(
                "smtp+plain sends without TLS and is only for a server on 127.0.0.1 or localhost, not {host}; \
                 use smtp:// or smtps://"
            )));
        }
        let user = Some(decode(parsed.username())).filter(|u| !u.is_empty());
        let password = parsed.password().map(|p| SecretString::from(decode(p)));
        let from = from
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .ok_or_else(|| "SAFEGPT_SMTP_FROM: set the sender address, e.g. safegpt@example.org".to_owned())?;
        let from: Mailbox =
            from.parse().map_err(|e| format!("SAFEGPT_SMTP_FROM: '{from}' is not an e-mail address ({e})"))?;
        Ok(SmtpSettings { host, port: parsed.port().unwrap_or(default_port), security, user, password, from })
    }
}

/// Sends the alerts' e-mails.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    pub fn new(settings: &SmtpSettings, timeout: Duration) -> Result<Mailer, String> {
        safegpt_graph::install_crypto_provider();
        let tls = || TlsParameters::new(settings.host.clone()).map_err(|e| format!("SAFEGPT_SMTP_URL: {e}"));
        let password = settings.user.is_some() && settings.password.is_some();
        let tls = match settings.security {
            // A password never goes in clear: someone on the path could strip the server's
            // STARTTLS offer. Without one, STARTTLS is used when offered.
            Security::StartTlsWhenOffered if password => Tls::Required(tls()?),
            Security::StartTlsWhenOffered => Tls::Opportunistic(tls()?),
            Security::Tls => Tls::Wrapper(tls()?),
            Security::Plain => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            .port(settings.port)
            .tls(tls)
            .timeout(Some(timeout));
        if let (Some(user), Some(password)) = (&settings.user, &settings.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.expose_secret().to_owned()));
        }
        Ok(Mailer { transport: builder.build(), from: settings.from.clone() })
    }

    /// Sends one plain-text e-mail; the error says what the server or the connection said.
    pub async fn send(&self, recipients: &[String], subject: &str, body: &str) -> Result<(), String> {
        let mut message = Message::builder().from(self.from.clone()).subject(subject).header(ContentType::TEXT_PLAIN);
        for to in recipients {
            let mailbox: Mailbox = to.parse().map_err(|e| format!("'{to}' is not an e-mail address ({e})"))?;
            message = message.to(mailbox);
        }
        let message = message.body(body.to_owned()).map_err(|e| format!("cannot build the e-mail: {e}"))?;
        self.transport.send(message).await.map(|_| ()).map_err(|e| crate::with_causes(e.to_string(), &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_schemes_and_their_refusals() {
        let s = SmtpSettings::parse("smtp://ann%40x.org:p%2Fw@mail.example.org", Some("safegpt@example.org")).unwrap();
        assert_eq!((s.host.as_str(), s.port, s.security), ("mail.example.org", 587, Security::StartTlsWhenOffered));
        assert_eq!(s.user.as_deref(), Some("ann@x.org"));
        assert_eq!(s.password.as_ref().unwrap().expose_secret(), "p/w");
        assert!(!format!("{s:?}").contains("p/w"), "the password is not in debug output");
        let s = SmtpSettings::parse("smtps://mail.example.org", Some("a@b.org")).unwrap();
        assert_eq!((s.port, s.security), (465, Security::Tls));
        let s = SmtpSettings::parse("smtp+plain://127.0.0.1:2525", Some("a@b.org")).unwrap();
        assert_eq!((s.port, s.security, s.user), (2525, Security::Plain, None));
        let err = SmtpSettings::parse("smtp+plain://mail.example.org:25", Some("a@b.org")).unwrap_err();
        assert!(err.contains("only for a server on 127.0.0.1"), "{err}");
        assert!(SmtpSettings::parse("http://x.org", Some("a@b.org")).unwrap_err().contains("scheme"));
        assert!(SmtpSettings::parse("smtp://x.org", None).unwrap_err().contains("SAFEGPT_SMTP_FROM"));
        assert!(SmtpSettings::parse("smtp://x.org", Some("nobody")).unwrap_err().contains("SAFEGPT_SMTP_FROM"));
    }
}
