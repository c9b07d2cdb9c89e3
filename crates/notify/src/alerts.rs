//! The alert rules: what is mailed to an organisation's notification addresses, decided from
//! the runs' `sync.*` events read in order and what was said before. Pure: no clock, no I/O.
//!
//! - A held run: one e-mail with what it would do and where to decide.
//! - Failing syncs: an e-mail at the first failure, then at most one a day while runs keep
//!   failing, and one when a run succeeds again. A failure because Graph refuses a
//!   permission says which permission to grant instead.
//! - The client secret: one e-mail at each step (30, 14, 7 and 1 day(s) ahead, and expired).

use safegpt_core::SecretWarning;
use time::{Duration, OffsetDateTime};

/// The language of an organisation's e-mails (`orgs update --language`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    En,
    Nl,
}

impl Language {
    /// `nl`, or English for anything else.
    pub fn of(code: &str) -> Language {
        if code.eq_ignore_ascii_case("nl") { Language::Nl } else { Language::En }
    }
}

/// A run's end, as its event in the outbox tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncEventSeen {
    /// `sync.succeeded`, `sync.failed` or `sync.held`.
    pub kind: String,
    pub run_id: String,
    pub would_disable: u64,
    pub would_remove: u64,
    pub error_kind: Option<String>,
    pub error_message: Option<String>,
}

/// What the alerts remember between passes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memory {
    pub failing_since: Option<OffsetDateTime>,
    pub failure_mailed_at: Option<OffsetDateTime>,
    /// `<expiry date>/<step>` of the secret warning last mailed.
    pub secret_warned: Option<String>,
}

/// One pass of the rules over an organisation.
#[derive(Debug, Clone)]
pub struct AlertInput<'a> {
    pub org_name: &'a str,
    pub language: Language,
    /// Where the administrator signs in (`public_url`), for links; `None`: no link.
    pub public_url: Option<&'a str>,
    pub now: OffsetDateTime,
    /// The runs' events since the last pass, oldest first.
    pub events: &'a [SyncEventSeen],
    pub secret_warning: Option<SecretWarning>,
}

/// An e-mail the rules decided on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// `held`, `failing`, `still_failing`, `recovered`, `missing_permission`,
    /// `secret_expiring`, `webhook_failing`.
    pub kind: &'static str,
    pub subject: String,
    pub body: String,
}

/// How long a failing organisation waits between reminders.
pub const FAILURE_REMINDER: Duration = Duration::DAY;

pub struct Alerts;

impl Alerts {
    /// Applies the rules to `memory`; returns the e-mails to queue.
    pub fn pass(input: &AlertInput<'_>, memory: &mut Memory) -> Vec<Mail> {
        let text = Texts { lang: input.language, org: input.org_name, public_url: input.public_url };
        let mut mails = Vec::new();
        for event in input.events {
            match event.kind.as_str() {
                "sync.held" => mails.push(text.held(event)),
                "sync.failed" => {
                    let remind = memory.failure_mailed_at.is_none_or(|at| input.now - at >= FAILURE_REMINDER);
                    let first = memory.failing_since.is_none();
                    if first {
                        memory.failing_since = Some(input.now);
                    }
                    if first || remind {
                        mails.push(text.failed(event, first, memory.failing_since.unwrap_or(input.now)));
                        memory.failure_mailed_at = Some(input.now);
                    }
                }
                "sync.succeeded" => {
                    if let Some(since) = memory.failing_since.take() {
                        mails.push(text.recovered(since));
                    }
                    memory.failure_mailed_at = None;
                }
                _ => {}
            }
        }
        if let Some(warning) = input.secret_warning {
            let key = format!("{}/{}", warning.expires, warning.step);
            if memory.secret_warned.as_deref() != Some(key.as_str()) {
                mails.push(text.secret(&warning));
                memory.secret_warned = Some(key);
            }
        }
        mails
    }

    /// The e-mail saying an endpoint kept failing for the whole retry schedule.
    pub fn webhook_failing(lang: Language, org: &str, url: &str, error: &str) -> Mail {
        Texts { lang, org, public_url: None }.webhook_failing(url, error)
    }
}

struct Texts<'a> {
    lang: Language,
    org: &'a str,
    public_url: Option<&'a str>,
}

impl Texts<'_> {
    fn mail(&self, kind: &'static str, subject: String, body: String) -> Mail {
        let footer = match self.lang {
            Language::En => {
                "You receive this because your address is in the notification addresses of Azure User Sync \
                             (Settings > Integrations > Azure User Sync > Advanced)."
            }
            Language::Nl => {
                "U ontvangt dit omdat uw adres bij de meldingsadressen van Azure User Sync staat \
                             (Instellingen > Integraties > Azure User Sync > Geavanceerd)."
            }
        };
        Mail { kind, subject: format!("[SafeGPT] {}: {subject}", self.org), body: format!("{body}\n\n-- \n{footer}\n") }
    }

    fn link(&self, path: &str) -> String {
        match self.public_url {
            Some(base) => format!("{}{path}", base.trim_end_matches('/')),
            None => match self.lang {
                Language::En => "SafeGPT > Settings > Integrations > Azure User Sync > Runs".into(),
                Language::Nl => "SafeGPT > Instellingen > Integraties > Azure User Sync > Runs".into(),
            },
        }
    }

    fn held(&self, e: &SyncEventSeen) -> Mail {
        let link = self.link(&format!("/runs/{}", e.run_id));
        let (d, r) = (e.would_disable, e.would_remove);
        match self.lang {
            Language::En => self.mail(
                "held",
                "a sync is waiting for your decision".into(),
                format!(
                    "A sync of {org} was held by the deletion threshold: it would disable {d} and remove {r} user(s), \
                     more than the threshold allows. Nothing was applied.\n\nReview the list and confirm or cancel it: \
                     {link}",
                    org = self.org
                ),
            ),
            Language::Nl => self.mail(
                "held",
                "een synchronisatie wacht op uw besluit".into(),
                format!(
                    "Een synchronisatie van {org} is tegengehouden door de verwijderdrempel: ze zou {d} gebruiker(s) \
                     uitschakelen en {r} verwijderen, meer dan de drempel toestaat. Er is niets toegepast.\n\n\
                     Bekijk de lijst en bevestig of annuleer: {link}",
                    org = self.org
                ),
            ),
        }
    }

    fn failed(&self, e: &SyncEventSeen, first: bool, since: OffsetDateTime) -> Mail {
        let message = e.error_message.as_deref().unwrap_or("(no message)");
        let since = since.date();
        let link = self.link(&format!("/runs/{}", e.run_id));
        if e.error_kind.as_deref() == Some("missing_permission") {
            return match self.lang {
                Language::En => self.mail(
                    "missing_permission",
                    "Microsoft Graph refuses a permission".into(),
                    format!(
                        "The sync of {org} stopped: Microsoft Graph refused a permission ({message}).\n\nIn Entra, \
                         open App registrations > your app > API permissions, make sure the application permissions \
                         User.Read.All and Group.Read.All are added, and press \"Grant admin consent\". Nothing \
                         was changed in SafeGPT.\n\nRun: {link}",
                        org = self.org
                    ),
                ),
                Language::Nl => self.mail(
                    "missing_permission",
                    "Microsoft Graph weigert een machtiging".into(),
                    format!(
                        "De synchronisatie van {org} is gestopt: Microsoft Graph weigerde een machtiging \
                         ({message}).\n\nOpen in Entra App registrations > uw app > API permissions, controleer dat \
                         de toepassingsmachtigingen User.Read.All en Group.Read.All zijn toegevoegd en klik op \
                         \"Grant admin consent\". Er is niets gewijzigd in SafeGPT.\n\nRun: {link}",
                        org = self.org
                    ),
                ),
            };
        }
        let kind = if first { "failing" } else { "still_failing" };
        match (self.lang, first) {
            (Language::En, true) => self.mail(
                kind,
                "the sync failed".into(),
                format!(
                    "The sync of {org} failed: {message}\n\nSafeGPT no longer follows Entra until this is fixed; \
                     nobody was disabled or removed because of the failure. Run: {link}",
                    org = self.org
                ),
            ),
            (Language::En, false) => self.mail(
                kind,
                format!("the sync is still failing (since {since})"),
                format!(
                    "The sync of {org} has been failing since {since}. The latest error: {message}\n\nRun: {link}",
                    org = self.org
                ),
            ),
            (Language::Nl, true) => self.mail(
                kind,
                "de synchronisatie is mislukt".into(),
                format!(
                    "De synchronisatie van {org} is mislukt: {message}\n\nSafeGPT volgt Entra niet meer tot dit is \
                     opgelost; door de fout is niemand uitgeschakeld of verwijderd. Run: {link}",
                    org = self.org
                ),
            ),
            (Language::Nl, false) => self.mail(
                kind,
                format!("de synchronisatie mislukt nog steeds (sinds {since})"),
                format!(
                    "De synchronisatie van {org} mislukt sinds {since}. De laatste fout: {message}\n\nRun: {link}",
                    org = self.org
                ),
            ),
        }
    }

    fn recovered(&self, since: OffsetDateTime) -> Mail {
        let since = since.date();
        match self.lang {
            Language::En => self.mail(
                "recovered",
                "the sync works again".into(),
                format!("The sync of {} succeeded again after failing since {since}.", self.org),
            ),
            Language::Nl => self.mail(
                "recovered",
                "de synchronisatie werkt weer".into(),
                format!("De synchronisatie van {} is weer gelukt, na fouten sinds {since}.", self.org),
            ),
        }
    }

    fn secret(&self, w: &SecretWarning) -> Mail {
        let (expires, days) = (w.expires, w.days_left);
        match (self.lang, w.expired()) {
            (Language::En, false) => self.mail(
                "secret_expiring",
                format!("the client secret expires in {days} day(s)"),
                format!("{}\n\nOrganisation: {}", w.describe(), self.org),
            ),
            (Language::En, true) => self.mail("secret_expiring", "the client secret has expired".into(), w.describe()),
            (Language::Nl, false) => self.mail(
                "secret_expiring",
                format!("het clientgeheim verloopt over {days} dag(en)"),
                format!(
                    "Het clientgeheim van {org} verloopt over {days} dag(en), op {expires}. Maak in Entra een nieuw \
                     aan (App registrations > uw app > Certificates & secrets > New client secret) en voer de Value \
                     en de vervaldatum in SafeGPT in.",
                    org = self.org
                ),
            ),
            (Language::Nl, true) => self.mail(
                "secret_expiring",
                "het clientgeheim is verlopen".into(),
                format!(
                    "Het clientgeheim van {org} is verlopen op {expires}. Maak in Entra een nieuw aan (App \
                     registrations > uw app > Certificates & secrets > New client secret) en voer de Value en de \
                     vervaldatum in SafeGPT in.",
                    org = self.org
                ),
            ),
        }
    }

    fn webhook_failing(&self, url: &str, error: &str) -> Mail {
        match self.lang {
            Language::En => self.mail(
                "webhook_failing",
                "a webhook endpoint is failing".into(),
                format!(
                    "The webhook endpoint {url} of {org} has not accepted a message for a day (last error: {error}). \
                     Its messages are kept and retried every hour, in order; fix the endpoint or delete it in \
                     Settings > Integrations > Webhooks.",
                    org = self.org
                ),
            ),
            Language::Nl => self.mail(
                "webhook_failing",
                "een webhook-eindpunt faalt".into(),
                format!(
                    "Het webhook-eindpunt {url} van {org} heeft al een dag geen bericht aangenomen (laatste fout: \
                     {error}). De berichten blijven bewaard en worden elk uur opnieuw geprobeerd, op volgorde; \
                     herstel het eindpunt of verwijder het via Instellingen > Integraties > Webhooks.",
                    org = self.org
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    fn event(kind: &str, error_kind: Option<&str>) -> SyncEventSeen {
        SyncEventSeen {
            kind: kind.into(),
            run_id: "r1".into(),
            would_disable: 7,
            would_remove: 0,
            error_kind: error_kind.map(Into::into),
            error_message: error_kind.map(|k| format!("{k} happened")),
        }
    }

    fn pass(now: OffsetDateTime, events: &[SyncEventSeen], memory: &mut Memory) -> Vec<&'static str> {
        let input = AlertInput {
            org_name: "Acme",
            language: Language::En,
            public_url: Some("https://safegpt.example.org/"),
            now,
            events,
            secret_warning: None,
        };
        Alerts::pass(&input, memory).iter().map(|m| m.kind).collect()
    }

    #[test]
    fn failures_mail_first_then_daily_then_once_on_recovery() {
        let t0 = datetime!(2026-12-03 10:00 UTC);
        let mut memory = Memory::default();
        let failed = event("sync.failed", Some("service_error"));
        assert_eq!(pass(t0, &[failed.clone(), failed.clone()], &mut memory), ["failing"]);
        assert_eq!(pass(t0 + Duration::hours(23), std::slice::from_ref(&failed), &mut memory), Vec::<&str>::new());
        assert_eq!(pass(t0 + Duration::hours(24), std::slice::from_ref(&failed), &mut memory), ["still_failing"]);
        assert_eq!(pass(t0 + Duration::hours(25), std::slice::from_ref(&failed), &mut memory), Vec::<&str>::new());
        let ok = event("sync.succeeded", None);
        assert_eq!(pass(t0 + Duration::hours(26), &[ok.clone(), ok.clone()], &mut memory), ["recovered"]);
        assert_eq!(memory, Memory { secret_warned: None, ..Memory::default() });
        assert_eq!(pass(t0 + Duration::hours(27), &[failed], &mut memory), ["failing"], "a new failure is news");
    }

    #[test]
    fn held_runs_and_permissions_name_what_to_do() {
        let mut memory = Memory::default();
        let now = datetime!(2026-12-03 10:00 UTC);
        let events = [event("sync.held", None), event("sync.failed", Some("missing_permission"))];
        let input = AlertInput {
            org_name: "Acme",
            language: Language::Nl,
            public_url: Some("https://safegpt.example.org"),
            now,
            events: &events,
            secret_warning: None,
        };
        let mails = Alerts::pass(&input, &mut memory);
        assert_eq!(mails.iter().map(|m| m.kind).collect::<Vec<_>>(), ["held", "missing_permission"]);
        assert!(
            mails[0].body.contains("7 gebruiker(s)") && mails[0].body.contains("https://safegpt.example.org/runs/r1")
        );
        assert!(mails[1].body.contains("Group.Read.All"));
        assert!(mails[0].subject.starts_with("[SafeGPT] Acme: "));
    }

    #[test]
    fn each_secret_step_is_mailed_once() {
        let mut memory = Memory::default();
        let now = datetime!(2026-12-03 10:00 UTC);
        let warning = |days_left, step| SecretWarning { expires: date!(2026 - 12 - 31), days_left, step };
        let mut secret = |w| {
            let input = AlertInput {
                org_name: "Acme",
                language: Language::En,
                public_url: None,
                now,
                events: &[],
                secret_warning: Some(w),
            };
            Alerts::pass(&input, &mut memory).into_iter().map(|m| m.subject).collect::<Vec<_>>()
        };
        assert_eq!(secret(warning(28, 30)), ["[SafeGPT] Acme: the client secret expires in 28 day(s)"]);
        assert!(secret(warning(27, 30)).is_empty());
        assert_eq!(secret(warning(14, 14)).len(), 1);
        assert_eq!(secret(warning(-1, 0)), ["[SafeGPT] Acme: the client secret has expired"]);
    }
}
