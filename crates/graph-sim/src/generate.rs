//! A generator of large, realistic tenants: nested groups, guests, disabled accounts,
//! devices and service principals among group members. Deterministic for a given seed.

use std::collections::BTreeSet;

use time::OffsetDateTime;
use time::macros::datetime;

use crate::tenant::{AppRecord, GroupRecord, OtherRecord, SecretRecord, TenantFile, UserRecord};

#[derive(Debug, Clone, PartialEq)]
pub struct GenerateSpec {
    pub users: usize,
    pub groups: usize,
    /// Depth of group nesting (1 = no nesting).
    pub nesting: usize,
    pub guests_percent: u32,
    pub disabled_percent: u32,
    pub seed: u64,
    /// Direct user memberships in all (on average `memberships / users` groups per user);
    /// `None`: 92 % of users in one group and 15 % in a second, as most tenants.
    pub memberships: Option<usize>,
}

impl Default for GenerateSpec {
    fn default() -> Self {
        GenerateSpec {
            users: 300,
            groups: 12,
            nesting: 3,
            guests_percent: 5,
            disabled_percent: 5,
            seed: 1,
            memberships: None,
        }
    }
}

impl std::str::FromStr for GenerateSpec {
    type Err = String;

    /// `users=N,groups=G,nesting=D,guests=PCT,disabled=PCT,seed=S,memberships=M`; omitted keys
    /// keep defaults.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut spec = GenerateSpec::default();
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let (key, value) = part.split_once('=').ok_or_else(|| format!("'{part}' is not key=value"))?;
            let number = |max: u64| -> Result<u64, String> {
                let n: u64 = value.trim().parse().map_err(|_| format!("{key}: '{value}' is not a whole number"))?;
                if n > max { Err(format!("{key}: {n} is more than {max}")) } else { Ok(n) }
            };
            match key.trim() {
                "users" => spec.users = number(10_000_000)? as usize,
                "groups" => spec.groups = number(100_000)? as usize,
                "nesting" => spec.nesting = number(50)?.max(1) as usize,
                "guests" => spec.guests_percent = number(100)? as u32,
                "disabled" => spec.disabled_percent = number(100)? as u32,
                "seed" => spec.seed = number(u64::MAX)?,
                "memberships" => spec.memberships = Some(number(100_000_000)? as usize),
                other => {
                    return Err(format!(
                        "unknown key '{other}'; use users, groups, nesting, guests, disabled, seed, memberships"
                    ));
                }
            }
        }
        Ok(spec)
    }
}

/// splitmix64: small, fast and deterministic, which is all a simulator needs.
#[derive(Debug, Clone)]
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn percent(&mut self, pct: u32) -> bool {
        (self.next() % 100) < u64::from(pct)
    }

    fn guid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | ((b >> 48) & 0x3fff),
            b & 0xffff_ffff_ffff
        )
    }
}

const FIRST: &[&str] = &[
    "Anna", "Bram", "Chloe", "Daan", "Emma", "Finn", "Grace", "Hugo", "Iris", "Jasper", "Kim", "Lars", "Mila", "Noah",
    "Olivia", "Pieter", "Quinn", "Ruth", "Sem", "Tess", "Umar", "Vera", "Wout", "Xena", "Yara", "Zoe",
];
const LAST: &[&str] = &[
    "de Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "Mulder", "Bos", "Vos", "Peters", "Hendriks", "Dekker",
    "Brouwer", "Dijkstra", "Smith", "Garcia", "Nguyen", "Kowalski", "Okafor", "Tanaka",
];
const DEPARTMENTS: &[&str] = &["Sales", "Finance", "Legal", "Engineering", "Support", "HR", "Marketing", "Operations"];
const TITLES: &[&str] = &["Analyst", "Engineer", "Manager", "Advisor", "Consultant", "Director", "Specialist"];

/// Client id and secret of the generated app, printed so a user can configure `safegpt`.
pub fn generate(spec: &GenerateSpec) -> TenantFile {
    let mut rng = Rng(spec.seed ^ 0x05AF_E6E7);
    let tenant_id = rng.guid();
    let domain = format!("sim{}.onmicrosoft.com", spec.seed);
    let client_id = rng.guid();
    let secret = format!("sim~{:016x}{:016x}", rng.next(), rng.next());
    let expires: OffsetDateTime = datetime!(2028-11-29 00:00 UTC);

    let mut users = Vec::with_capacity(spec.users);
    for n in 0..spec.users {
        let first = FIRST[rng.below(FIRST.len())];
        let last = LAST[rng.below(LAST.len())];
        let alias = format!("{}.{}{n}", first.to_lowercase(), last.to_lowercase().replace(' ', ""));
        let guest = rng.percent(spec.guests_percent);
        let (upn, mail, user_type) = if guest {
            (format!("{alias}_fabrikam.com#EXT#@{domain}"), Some(format!("{alias}@fabrikam.com")), "Guest")
        } else {
            (format!("{alias}@{domain}"), Some(format!("{alias}@contoso.com")), "Member")
        };
        users.push(UserRecord {
            id: rng.guid(),
            user_principal_name: upn,
            // A few members without mailbox: the sync must fall back to the UPN.
            mail: if !guest && rng.percent(3) { None } else { mail },
            display_name: Some(format!("{first} {last}")),
            given_name: Some(first.to_owned()),
            surname: Some(last.to_owned()),
            job_title: rng.percent(80).then(|| TITLES[rng.below(TITLES.len())].to_owned()),
            department: rng.percent(90).then(|| DEPARTMENTS[rng.below(DEPARTMENTS.len())].to_owned()),
            account_enabled: !rng.percent(spec.disabled_percent),
            user_type: user_type.to_owned(),
            other_mails: if guest { vec![format!("{alias}@fabrikam.com")] } else { Vec::new() },
        });
        // Every fourth guest has no mailbox in the tenant: only its invitation address.
        if guest && n % 4 == 0 {
            users.last_mut().expect("pushed above").mail = None;
        }
    }

    let mut groups: Vec<GroupRecord> = (0..spec.groups)
        .map(|g| GroupRecord {
            id: rng.guid(),
            display_name: format!("{} {}", DEPARTMENTS[g % DEPARTMENTS.len()], g / DEPARTMENTS.len() + 1),
            members: Vec::new(),
        })
        .collect();
    let mut members: Vec<BTreeSet<String>> = vec![BTreeSet::new(); groups.len()];
    if !groups.is_empty() {
        // Group g sits at level g * nesting / groups; each group below level 0 is a member
        // of a group one level up, so chains reach the requested depth. Levels are runs of
        // consecutive groups: `first_of[l]` is the first group of level l.
        let level = |g: usize| g * spec.nesting / spec.groups;
        let mut first_of = vec![groups.len(); spec.nesting + 1];
        for g in (0..groups.len()).rev() {
            first_of[level(g)] = g;
        }
        for g in 0..groups.len() {
            if level(g) > 0 {
                let parents = first_of[level(g) - 1]..first_of[level(g)];
                if parents.is_empty() {
                    continue; // more levels than groups
                }
                let parent = parents.start + rng.below(parents.len());
                members[parent].insert(groups[g].id.clone());
            }
        }
        match spec.memberships {
            None => {
                for user in &users {
                    if rng.percent(92) {
                        members[rng.below(groups.len())].insert(user.id.clone());
                    }
                    if rng.percent(15) {
                        members[rng.below(groups.len())].insert(user.id.clone());
                    }
                }
            }
            Some(total) => {
                // Spread evenly: each user in `total / users` groups, the remainder one more.
                let (each, extra) = (total / users.len().max(1), total % users.len().max(1));
                for (n, user) in users.iter().enumerate() {
                    for _ in 0..each + usize::from(n < extra) {
                        members[rng.below(groups.len())].insert(user.id.clone());
                    }
                }
            }
        }
    }
    let devices: Vec<OtherRecord> = (0..spec.groups.min(50))
        .map(|d| OtherRecord { id: rng.guid(), display_name: Some(format!("LAPTOP-{d:04}")) })
        .collect();
    let service_principals = vec![OtherRecord { id: rng.guid(), display_name: Some("Meeting Room Booking".into()) }];
    if !groups.is_empty() {
        for d in &devices {
            members[rng.below(groups.len())].insert(d.id.clone());
        }
        members[0].insert(service_principals[0].id.clone());
    }
    for (group, set) in groups.iter_mut().zip(members) {
        group.members = set.into_iter().collect();
    }

    TenantFile {
        tenant_id,
        domain,
        apps: vec![AppRecord {
            client_id,
            roles: vec!["User.Read.All".into(), "Group.Read.All".into()],
            secrets: vec![SecretRecord { value: secret, expires }],
        }],
        users,
        groups,
        devices,
        service_principals,
        fidelity: None,
        faults: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_parses_and_rejects_unknown_keys() {
        let spec: GenerateSpec = "users=1000,groups=50,nesting=3,guests=10,disabled=2,seed=7".parse().unwrap();
        assert_eq!(
            spec,
            GenerateSpec {
                users: 1000,
                groups: 50,
                nesting: 3,
                guests_percent: 10,
                disabled_percent: 2,
                seed: 7,
                memberships: None
            }
        );
        assert_eq!("memberships=500".parse::<GenerateSpec>().unwrap().memberships, Some(500));
        assert!("users=x".parse::<GenerateSpec>().unwrap_err().contains("users"));
        assert!("colour=blue".parse::<GenerateSpec>().unwrap_err().contains("colour"));
    }

    #[test]
    fn generated_tenant_is_deterministic_nested_and_loads() {
        let spec =
            GenerateSpec { users: 500, groups: 12, nesting: 3, guests_percent: 10, seed: 3, ..Default::default() };
        let a = generate(&spec);
        let b = generate(&spec);
        assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
        let guests = a.users.iter().filter(|u| u.user_type == "Guest").count();
        assert!((20..=90).contains(&guests), "about 10 % guests, got {guests}");
        assert!(a.users.iter().any(|u| !u.account_enabled));
        let group_ids: BTreeSet<&str> = a.groups.iter().map(|g| g.id.as_str()).collect();
        let nested = a.groups.iter().filter(|g| g.members.iter().any(|m| group_ids.contains(m.as_str()))).count();
        assert!(nested > 0, "some groups contain groups");
        let mut dir = crate::tenant::Directory::from_file(a.clone()).unwrap();
        let parent = a.groups.iter().find(|g| g.members.iter().any(|m| group_ids.contains(m.as_str()))).unwrap();
        let all = dir.transitive_members(&parent.id);
        assert!(all.len() > parent.members.len(), "transitive members include nested ones");
    }

    #[test]
    fn many_groups_hold_the_memberships_asked_for_and_nest() {
        let spec: GenerateSpec = "users=2000,groups=400,nesting=3,memberships=10000,seed=2".parse().unwrap();
        let tenant = generate(&spec);
        let users: BTreeSet<&str> = tenant.users.iter().map(|u| u.id.as_str()).collect();
        let held: usize =
            tenant.groups.iter().map(|g| g.members.iter().filter(|m| users.contains(m.as_str())).count()).sum();
        // Each user draws 5 groups of 400; a draw of a group it is already in is lost.
        assert!((9_800..=10_000).contains(&held), "about 10,000 direct user memberships, got {held}");
        let group_ids: BTreeSet<&str> = tenant.groups.iter().map(|g| g.id.as_str()).collect();
        let inner = tenant.groups.iter().flat_map(|g| &g.members).filter(|m| group_ids.contains(m.as_str())).count();
        assert_eq!(inner, 400 - 134, "every group below the top level is in one group a level up");
        let few: GenerateSpec = "users=10,groups=2,nesting=5".parse().unwrap();
        assert_eq!(generate(&few).groups.len(), 2, "more levels than groups still generates");
    }
}
