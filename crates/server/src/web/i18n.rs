//! The admin UI in English and Dutch.
//!
//! Every text is a field of [`Texts`], so a text missing in one language does not compile.
//! The language comes from the `lang` cookie (the switch in the header) or else from
//! `Accept-Language`. Messages from Entra and Graph failures (cause and fix) stay English:
//! they quote Entra's own English menu names.

use axum::http::{HeaderMap, header};

use super::auth::cookie_value;

pub const LANG_COOKIE: &str = "lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Nl,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Nl => "nl",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        match code.trim().to_ascii_lowercase().as_str() {
            "en" => Some(Lang::En),
            "nl" => Some(Lang::Nl),
            _ => None,
        }
    }

    /// The cookie wins; else the first of `Accept-Language` (by q-value) we speak.
    pub fn from_headers(headers: &HeaderMap) -> Lang {
        if let Some(lang) = cookie_value(headers, LANG_COOKIE).and_then(Lang::parse) {
            return lang;
        }
        let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let mut choices: Vec<(f32, Lang)> = accept
            .split(',')
            .filter_map(|item| {
                let mut parts = item.split(';');
                let tag = parts.next()?.trim();
                let q =
                    parts.find_map(|p| p.trim().strip_prefix("q=")).and_then(|q| q.parse::<f32>().ok()).unwrap_or(1.0);
                Lang::parse(tag.split('-').next()?).map(|l| (q, l))
            })
            .collect();
        choices.sort_by(|a, b| b.0.total_cmp(&a.0));
        choices.first().map_or(Lang::En, |(_, l)| *l)
    }

    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::En => &EN,
            Lang::Nl => &NL,
        }
    }
}

pub struct Texts {
    pub lang: &'static str,
    pub other_lang: &'static str,
    pub other_lang_name: &'static str,
    // Chrome
    pub nav_integrations: &'static str,
    pub nav_users: &'static str,
    pub nav_runs: &'static str,
    pub nav_audit: &'static str,
    pub nav_tokens: &'static str,
    pub nav_api_docs: &'static str,
    pub signed_in_as: &'static str,
    pub log_out: &'static str,
    pub settings: &'static str,
    // Login and setup
    pub log_in: &'static str,
    pub email: &'static str,
    pub password: &'static str,
    pub login_failed: &'static str,
    pub login_throttled: &'static str,
    pub setup_title: &'static str,
    pub setup_intro: &'static str,
    pub setup_link_invalid: &'static str,
    pub create_admin: &'static str,
    // Integrations
    pub integrations: &'static str,
    pub col_name: &'static str,
    pub col_license: &'static str,
    pub col_last_update: &'static str,
    pub col_actions: &'static str,
    pub included: &'static str,
    pub not_available: &'static str,
    pub edit: &'static str,
    pub start_sync: &'static str,
    pub switch_on_off: &'static str,
    pub desc_office_addin: &'static str,
    pub desc_azure_user_sync: &'static str,
    pub desc_google_search: &'static str,
    pub desc_openzaak: &'static str,
    pub notice_saved: &'static str,
    pub notice_already_running: &'static str,
    pub notice_switched: &'static str,
    pub view_run: &'static str,
    // Azure form
    pub azure_title: &'static str,
    pub active: &'static str,
    pub tenant_id: &'static str,
    pub client_id: &'static str,
    pub client_secret: &'static str,
    pub secret_stored: &'static str,
    pub secret_not_stored: &'static str,
    pub reveal: &'static str,
    pub group_id: &'static str,
    pub group_id_hint: &'static str,
    pub auto_disable: &'static str,
    pub auto_remove: &'static str,
    pub remove_after_days: &'static str,
    pub update_settings: &'static str,
    pub advanced: &'static str,
    pub include_guests: &'static str,
    pub seats: &'static str,
    pub seats_hint: &'static str,
    pub threshold_count: &'static str,
    pub threshold_percent: &'static str,
    pub threshold_hint: &'static str,
    pub cloud: &'static str,
    pub cloud_global: &'static str,
    pub cloud_usgov: &'static str,
    pub cloud_china: &'static str,
    pub cloud_custom: &'static str,
    pub login_url: &'static str,
    pub graph_url: &'static str,
    pub custom_urls_hint: &'static str,
    pub form_has_errors: &'static str,
    pub interval: &'static str,
    pub interval_hint: &'static str,
    pub full_sync_interval: &'static str,
    pub full_sync_interval_hint: &'static str,
    pub secret_expires: &'static str,
    pub secret_expires_hint: &'static str,
    pub next_sync: &'static str,
    pub test_connection: &'static str,
    pub preview: &'static str,
    // Test and preview
    pub test_title: &'static str,
    pub test_all_ok: &'static str,
    pub test_failed: &'static str,
    pub check_ok: &'static str,
    pub check_failed: &'static str,
    pub preview_title: &'static str,
    pub preview_intro: &'static str,
    pub preview_nothing: &'static str,
    pub back_to_settings: &'static str,
    // Runs
    pub runs_title: &'static str,
    pub run_title: &'static str,
    pub col_started: &'static str,
    pub col_trigger: &'static str,
    pub col_duration: &'static str,
    pub col_changes: &'static str,
    pub col_status: &'static str,
    pub col_error: &'static str,
    pub col_action: &'static str,
    pub col_user: &'static str,
    pub col_reason: &'static str,
    pub col_fields: &'static str,
    pub no_runs: &'static str,
    pub no_changes: &'static str,
    pub users_read: &'static str,
    pub pages_read: &'static str,
    pub graph_requests: &'static str,
    pub running_now: &'static str,
    pub held_explain: &'static str,
    pub confirm_apply: &'static str,
    pub cancel: &'static str,
    pub resolved_by: &'static str,
    pub follow_up: &'static str,
    pub counts_created: &'static str,
    pub counts_updated: &'static str,
    pub counts_enabled: &'static str,
    pub counts_disabled: &'static str,
    pub counts_removed: &'static str,
    pub counts_unchanged: &'static str,
    pub counts_awaiting: &'static str,
    // Users
    pub users_title: &'static str,
    pub search: &'static str,
    pub filter: &'static str,
    pub any_status: &'static str,
    pub any_source: &'static str,
    pub seats_used: &'static str,
    pub unlimited: &'static str,
    pub col_email: &'static str,
    pub col_source: &'static str,
    pub col_since: &'static str,
    pub col_scope: &'static str,
    pub in_scope: &'static str,
    pub not_in_scope: &'static str,
    pub removed_on: &'static str,
    pub enable: &'static str,
    pub disable: &'static str,
    pub no_users: &'static str,
    pub previous: &'static str,
    pub next: &'static str,
    pub source_entra: &'static str,
    pub source_local: &'static str,
    // Audit and tokens
    pub audit_title: &'static str,
    pub col_at: &'static str,
    pub col_actor: &'static str,
    pub col_target: &'static str,
    pub col_details: &'static str,
    pub tokens_title: &'static str,
    pub tokens_intro: &'static str,
    pub token_name: &'static str,
    pub create_token: &'static str,
    pub token_created: &'static str,
    pub revoke: &'static str,
    pub revoked: &'static str,
    pub col_created: &'static str,
    pub col_last_used: &'static str,
    pub never: &'static str,
    pub yes: &'static str,
    pub no: &'static str,
}

impl Texts {
    pub fn status(&self, code: &str) -> &'static str {
        match (self.lang, code) {
            ("nl", "active") => "Actief",
            ("nl", "disabled") => "Uitgeschakeld",
            ("nl", "awaiting_license") => "Wacht op licentie",
            (_, "active") => "Active",
            (_, "disabled") => "Disabled",
            (_, "awaiting_license") => "Awaiting license",
            _ => "?",
        }
    }

    pub fn reason(&self, code: &str) -> &'static str {
        match (self.lang, code) {
            ("nl", "not_in_group") => "niet meer in de groep",
            ("nl", "deleted_in_entra") => "verwijderd in Entra",
            ("nl", "disabled_in_entra") => "uitgeschakeld in Entra",
            ("nl", "guest_excluded") => "gast (gasten worden niet gesynchroniseerd)",
            ("nl", "admin") => "door een beheerder",
            (_, "not_in_group") => "no longer in the group",
            (_, "deleted_in_entra") => "deleted in Entra",
            (_, "disabled_in_entra") => "disabled in Entra",
            (_, "guest_excluded") => "guest (guests are not synced)",
            (_, "admin") => "by an administrator",
            _ => "",
        }
    }

    pub fn action(&self, code: &str) -> &'static str {
        match (self.lang, code) {
            ("nl", "create") => "aanmaken",
            ("nl", "update") => "bijwerken",
            ("nl", "enable") => "inschakelen",
            ("nl", "disable") => "uitschakelen",
            ("nl", "remove") => "verwijderen",
            (_, "create") => "create",
            (_, "update") => "update",
            (_, "enable") => "enable",
            (_, "disable") => "disable",
            (_, "remove") => "remove",
            _ => "?",
        }
    }

    pub fn run_status(&self, code: &str) -> &'static str {
        match (self.lang, code) {
            ("nl", "running") => "bezig",
            ("nl", "succeeded") => "geslaagd",
            ("nl", "failed") => "mislukt",
            ("nl", "held") => "wacht op bevestiging",
            ("nl", "dry_run") => "voorbeeld",
            ("nl", "interrupted") => "onderbroken",
            ("nl", "confirmed") => "bevestigd",
            ("nl", "cancelled") => "geannuleerd",
            (_, "running") => "running",
            (_, "succeeded") => "succeeded",
            (_, "failed") => "failed",
            (_, "held") => "waiting for confirmation",
            (_, "dry_run") => "preview",
            (_, "interrupted") => "interrupted",
            (_, "confirmed") => "confirmed",
            (_, "cancelled") => "cancelled",
            _ => "?",
        }
    }

    pub fn trigger(&self, code: &str) -> &'static str {
        match (self.lang, code) {
            ("nl", "manual") => "handmatig",
            ("nl", "schedule") => "schema",
            (_, "manual") => "manual",
            (_, "schedule") => "schedule",
            (_, "api") => "API",
            (_, "cli") => "CLI",
            _ => "?",
        }
    }

    pub fn phase(&self, code: &str) -> &'static str {
        match (self.lang, code) {
            ("nl", "starting") => "starten",
            ("nl", "reading_users") => "gebruikers lezen",
            ("nl", "reading_groups") => "groepen lezen",
            ("nl", "applying") => "wijzigingen toepassen",
            ("nl", "finished") => "klaar",
            (_, "starting") => "starting",
            (_, "reading_users") => "reading users",
            (_, "reading_groups") => "reading groups",
            (_, "applying") => "applying changes",
            (_, "finished") => "finished",
            _ => "?",
        }
    }
}

pub static EN: Texts = Texts {
    lang: "en",
    other_lang: "nl",
    other_lang_name: "Nederlands",
    nav_integrations: "Integrations",
    nav_users: "Users",
    nav_runs: "Sync runs",
    nav_audit: "Audit log",
    nav_tokens: "API tokens",
    nav_api_docs: "API",
    signed_in_as: "Signed in as",
    log_out: "Log out",
    settings: "Settings",
    log_in: "Log in",
    email: "E-mail",
    password: "Password",
    login_failed: "The e-mail address or the password is wrong.",
    login_throttled: "Too many failed attempts. Wait a moment and try again (seconds):",
    setup_title: "Create the first administrator",
    setup_intro: "No administrator exists yet. Choose the e-mail address and a password (at least 12 characters) of the first one.",
    setup_link_invalid: "This setup link is not valid (anymore). The server log shows the current one while no administrator exists.",
    create_admin: "Create administrator",
    integrations: "Integrations",
    col_name: "Name",
    col_license: "License",
    col_last_update: "Last update",
    col_actions: "Actions",
    included: "Included",
    not_available: "N/A",
    edit: "Edit",
    start_sync: "Start sync",
    switch_on_off: "Switch on or off",
    desc_office_addin: "Enables users to seamlessly integrate SafeGPT into Microsoft Office.",
    desc_azure_user_sync: "Synchronize users from Azure to SafeGPT.",
    desc_google_search: "Allow SafeGPT to fetch data from Google Search",
    desc_openzaak: "This is for the OpenZaak integration regarding the DMS",
    notice_saved: "Settings saved.",
    notice_already_running: "A sync is already running; no second one was started.",
    notice_switched: "Integration switched.",
    view_run: "View the run",
    azure_title: "Azure Integrations",
    active: "Active",
    tenant_id: "Tenant Id",
    client_id: "Client Id",
    client_secret: "Client Secret",
    secret_stored: "A secret is stored. Leave this empty to keep it.",
    secret_not_stored: "No secret is stored yet.",
    reveal: "Show what I type",
    group_id: "Group Id",
    group_id_hint: "Object ID of a group in Entra; several: one per line. Empty: all users of the tenant. Members of nested groups count.",
    auto_disable: "Automatically disable users (if not in group)",
    auto_remove: "Automatically remove users (if disabled)",
    remove_after_days: "Remove after days",
    update_settings: "Update Settings",
    advanced: "Advanced",
    include_guests: "Include guest users",
    seats: "Seats",
    seats_hint: "Licenses of this deployment; 0 = unlimited.",
    threshold_count: "Deletion safety: hold a run that disables more than this many users",
    threshold_percent: "…and more than this percentage of the synced users",
    threshold_hint: "A held run waits until an administrator confirms or cancels it.",
    cloud: "Cloud",
    cloud_global: "Global (Microsoft Entra ID)",
    cloud_usgov: "US Government (L4)",
    cloud_china: "China (21Vianet)",
    cloud_custom: "Custom endpoints",
    login_url: "Login URL",
    graph_url: "Graph URL",
    custom_urls_hint: "Only for custom endpoints, e.g. a simulator: both URLs.",
    form_has_errors: "Nothing was saved. Correct the fields marked below.",
    interval: "Sync interval",
    interval_hint: "How often the sync runs by itself, e.g. 15m or 1h (at least 10s).",
    full_sync_interval: "Full read interval",
    full_sync_interval_hint: "Runs read only what changed in Entra; this often they read every user and group as a safety net, e.g. 1d (at most 6d).",
    secret_expires: "Client secret expires on",
    secret_expires_hint: "The \"Expires\" date of the secret in Entra. SafeGPT warns 30, 14, 7 and 1 day(s) ahead.",
    next_sync: "Next sync",
    test_connection: "Test connection",
    preview: "Preview",
    test_title: "Test connection",
    test_all_ok: "Every check passed: the sync can read what it needs.",
    test_failed: "A check failed. Each failed check names its cause and the fix.",
    check_ok: "OK",
    check_failed: "Failed",
    preview_title: "Preview: what the next sync would do",
    preview_intro: "Nothing was changed. This is the plan of a sync run now:",
    preview_nothing: "The directory is up to date: the sync would change nothing.",
    back_to_settings: "Back to the settings",
    runs_title: "Sync runs",
    run_title: "Sync run",
    col_started: "Started",
    col_trigger: "Trigger",
    col_duration: "Duration",
    col_changes: "Changes",
    col_status: "Status",
    col_error: "Error",
    col_action: "Action",
    col_user: "User",
    col_reason: "Reason",
    col_fields: "Changed fields",
    no_runs: "No sync has run yet. Start one with the rocket on the Integrations page.",
    no_changes: "No changes.",
    users_read: "Users read",
    pages_read: "Pages read",
    graph_requests: "Graph requests",
    running_now: "Running",
    held_explain: "This run was stopped before it changed anything: it would disable many users at once. Check the list below. Confirm to apply a fresh sync that disables them, or cancel.",
    confirm_apply: "Confirm and apply",
    cancel: "Cancel",
    resolved_by: "Decided by",
    follow_up: "Applied by run",
    counts_created: "created",
    counts_updated: "updated",
    counts_enabled: "enabled",
    counts_disabled: "disabled",
    counts_removed: "removed",
    counts_unchanged: "unchanged",
    counts_awaiting: "awaiting license",
    users_title: "Users",
    search: "Search",
    filter: "Filter",
    any_status: "Any status",
    any_source: "Any source",
    seats_used: "Seats used",
    unlimited: "unlimited",
    col_email: "E-mail",
    col_source: "Source",
    col_since: "Since",
    col_scope: "Scope",
    in_scope: "in scope",
    not_in_scope: "not in scope",
    removed_on: "removed on",
    enable: "Enable",
    disable: "Disable",
    no_users: "No users match.",
    previous: "Previous",
    next: "Next",
    source_entra: "Entra",
    source_local: "Local",
    audit_title: "Audit log",
    col_at: "When",
    col_actor: "Who",
    col_target: "Target",
    col_details: "Details",
    tokens_title: "API tokens",
    tokens_intro: "Tokens let scripts and other services use the REST API (header Authorization: Bearer …). Only a hash is stored.",
    token_name: "Name",
    create_token: "Create token",
    token_created: "Copy this token now. It is not shown again:",
    revoke: "Revoke",
    revoked: "revoked",
    col_created: "Created",
    col_last_used: "Last used",
    never: "never",
    yes: "yes",
    no: "no",
};

pub static NL: Texts = Texts {
    lang: "nl",
    other_lang: "en",
    other_lang_name: "English",
    nav_integrations: "Integraties",
    nav_users: "Gebruikers",
    nav_runs: "Synchronisaties",
    nav_audit: "Auditlog",
    nav_tokens: "API-tokens",
    nav_api_docs: "API",
    signed_in_as: "Ingelogd als",
    log_out: "Uitloggen",
    settings: "Instellingen",
    log_in: "Inloggen",
    email: "E-mailadres",
    password: "Wachtwoord",
    login_failed: "Het e-mailadres of het wachtwoord is onjuist.",
    login_throttled: "Te veel mislukte pogingen. Wacht even en probeer het opnieuw (seconden):",
    setup_title: "Maak de eerste beheerder aan",
    setup_intro: "Er is nog geen beheerder. Kies het e-mailadres en een wachtwoord (minstens 12 tekens) van de eerste.",
    setup_link_invalid: "Deze installatielink is niet (meer) geldig. Zolang er geen beheerder is, staat de actuele link in het serverlog.",
    create_admin: "Beheerder aanmaken",
    integrations: "Integraties",
    col_name: "Naam",
    col_license: "Licentie",
    col_last_update: "Laatst bijgewerkt",
    col_actions: "Acties",
    included: "Inbegrepen",
    not_available: "N.v.t.",
    edit: "Bewerken",
    start_sync: "Synchronisatie starten",
    switch_on_off: "Aan- of uitzetten",
    desc_office_addin: "Hiermee integreren gebruikers SafeGPT naadloos in Microsoft Office.",
    desc_azure_user_sync: "Synchroniseer gebruikers van Azure naar SafeGPT.",
    desc_google_search: "Laat SafeGPT gegevens ophalen via Google Search",
    desc_openzaak: "Dit is voor de OpenZaak-integratie met het DMS",
    notice_saved: "Instellingen opgeslagen.",
    notice_already_running: "Er loopt al een synchronisatie; er is geen tweede gestart.",
    notice_switched: "Integratie omgezet.",
    view_run: "Bekijk de synchronisatie",
    azure_title: "Azure Integraties",
    active: "Actief",
    tenant_id: "Tenant Id",
    client_id: "Client Id",
    client_secret: "Client Secret",
    secret_stored: "Er is een secret opgeslagen. Laat dit leeg om het te behouden.",
    secret_not_stored: "Er is nog geen secret opgeslagen.",
    reveal: "Toon wat ik typ",
    group_id: "Group Id",
    group_id_hint: "Object ID van een groep in Entra; meerdere: één per regel. Leeg: alle gebruikers van de tenant. Leden van geneste groepen tellen mee.",
    auto_disable: "Gebruikers automatisch uitschakelen (indien niet in groep)",
    auto_remove: "Gebruikers automatisch verwijderen (indien uitgeschakeld)",
    remove_after_days: "Verwijderen na dagen",
    update_settings: "Instellingen bijwerken",
    advanced: "Geavanceerd",
    include_guests: "Gastgebruikers meenemen",
    seats: "Licenties",
    seats_hint: "Licenties van deze installatie; 0 = onbeperkt.",
    threshold_count: "Veiligheidsdrempel: houd een synchronisatie aan die meer dan dit aantal gebruikers uitschakelt",
    threshold_percent: "…en meer dan dit percentage van de gesynchroniseerde gebruikers",
    threshold_hint: "Een aangehouden synchronisatie wacht tot een beheerder bevestigt of annuleert.",
    cloud: "Cloud",
    cloud_global: "Wereldwijd (Microsoft Entra ID)",
    cloud_usgov: "Amerikaanse overheid (L4)",
    cloud_china: "China (21Vianet)",
    cloud_custom: "Eigen endpoints",
    login_url: "Login-URL",
    graph_url: "Graph-URL",
    custom_urls_hint: "Alleen voor eigen endpoints, bijvoorbeeld een simulator: beide URL's.",
    form_has_errors: "Er is niets opgeslagen. Verbeter de gemarkeerde velden.",
    interval: "Synchronisatie-interval",
    interval_hint: "Hoe vaak de synchronisatie vanzelf loopt, bijvoorbeeld 15m of 1h (minstens 10s).",
    full_sync_interval: "Interval volledige inlezing",
    full_sync_interval_hint: "Een synchronisatie leest alleen wat in Entra veranderde; zo vaak leest ze als vangnet alle gebruikers en groepen, bijvoorbeeld 1d (hoogstens 6d).",
    secret_expires: "Client secret verloopt op",
    secret_expires_hint: "De datum \"Expires\" van het secret in Entra. SafeGPT waarschuwt 30, 14, 7 en 1 dag(en) vooraf.",
    next_sync: "Volgende synchronisatie",
    test_connection: "Verbinding testen",
    preview: "Voorbeeld",
    test_title: "Verbinding testen",
    test_all_ok: "Alle controles geslaagd: de synchronisatie kan lezen wat nodig is.",
    test_failed: "Een controle is mislukt. Elke mislukte controle noemt de oorzaak en de oplossing.",
    check_ok: "OK",
    check_failed: "Mislukt",
    preview_title: "Voorbeeld: wat de volgende synchronisatie zou doen",
    preview_intro: "Er is niets gewijzigd. Dit is het plan van een synchronisatie op dit moment:",
    preview_nothing: "De gebruikerslijst is actueel: de synchronisatie zou niets wijzigen.",
    back_to_settings: "Terug naar de instellingen",
    runs_title: "Synchronisaties",
    run_title: "Synchronisatie",
    col_started: "Gestart",
    col_trigger: "Aanleiding",
    col_duration: "Duur",
    col_changes: "Wijzigingen",
    col_status: "Status",
    col_error: "Fout",
    col_action: "Actie",
    col_user: "Gebruiker",
    col_reason: "Reden",
    col_fields: "Gewijzigde velden",
    no_runs: "Er is nog niet gesynchroniseerd. Start met de raket op de pagina Integraties.",
    no_changes: "Geen wijzigingen.",
    users_read: "Gebruikers gelezen",
    pages_read: "Pagina's gelezen",
    graph_requests: "Graph-verzoeken",
    running_now: "Bezig",
    held_explain: "Deze synchronisatie is gestopt voordat er iets veranderde: ze zou veel gebruikers tegelijk uitschakelen. Controleer de lijst hieronder. Bevestig om een nieuwe synchronisatie toe te passen die hen uitschakelt, of annuleer.",
    confirm_apply: "Bevestigen en toepassen",
    cancel: "Annuleren",
    resolved_by: "Besloten door",
    follow_up: "Toegepast door synchronisatie",
    counts_created: "aangemaakt",
    counts_updated: "bijgewerkt",
    counts_enabled: "ingeschakeld",
    counts_disabled: "uitgeschakeld",
    counts_removed: "verwijderd",
    counts_unchanged: "ongewijzigd",
    counts_awaiting: "wacht op licentie",
    users_title: "Gebruikers",
    search: "Zoeken",
    filter: "Filteren",
    any_status: "Elke status",
    any_source: "Elke bron",
    seats_used: "Licenties in gebruik",
    unlimited: "onbeperkt",
    col_email: "E-mailadres",
    col_source: "Bron",
    col_since: "Sinds",
    col_scope: "Bereik",
    in_scope: "binnen bereik",
    not_in_scope: "buiten bereik",
    removed_on: "verwijderd op",
    enable: "Inschakelen",
    disable: "Uitschakelen",
    no_users: "Geen gebruikers gevonden.",
    previous: "Vorige",
    next: "Volgende",
    source_entra: "Entra",
    source_local: "Lokaal",
    audit_title: "Auditlog",
    col_at: "Wanneer",
    col_actor: "Wie",
    col_target: "Doel",
    col_details: "Details",
    tokens_title: "API-tokens",
    tokens_intro: "Met tokens gebruiken scripts en andere diensten de REST API (header Authorization: Bearer …). Alleen een hash wordt bewaard.",
    token_name: "Naam",
    create_token: "Token aanmaken",
    token_created: "Kopieer dit token nu. Het wordt niet opnieuw getoond:",
    revoke: "Intrekken",
    revoked: "ingetrokken",
    col_created: "Aangemaakt",
    col_last_used: "Laatst gebruikt",
    never: "nooit",
    yes: "ja",
    no: "nee",
};

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn language_follows_accept_language_quality_and_the_cookie_wins() {
        assert_eq!(Lang::from_headers(&headers(&[])), Lang::En);
        assert_eq!(Lang::from_headers(&headers(&[("accept-language", "nl-NL,nl;q=0.9,en;q=0.8")])), Lang::Nl);
        assert_eq!(Lang::from_headers(&headers(&[("accept-language", "de-DE, en;q=0.5, nl;q=0.7")])), Lang::Nl);
        assert_eq!(Lang::from_headers(&headers(&[("accept-language", "fr")])), Lang::En);
        assert_eq!(
            Lang::from_headers(&headers(&[("accept-language", "nl"), ("cookie", "lang=en")])),
            Lang::En,
            "the switch overrides the browser"
        );
    }

    #[test]
    fn the_seed_labels_are_used() {
        assert_eq!(NL.active, "Actief");
        assert_eq!(EN.update_settings, "Update Settings");
        assert_eq!(EN.auto_disable, "Automatically disable users (if not in group)");
        assert_eq!(EN.auto_remove, "Automatically remove users (if disabled)");
        assert_eq!(NL.status("disabled"), "Uitgeschakeld");
    }
}
