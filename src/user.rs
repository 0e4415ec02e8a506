//! `--user USER[:GROUP]`: the spec as given, each part a name or a number, and its resolution
//! against the image's `/etc/passwd` and `/etc/group` into the ids, supplementary groups and
//! home the program runs with (the contract's "Start"). Pure: the files come in as bytes, so
//! every rule is unit-tested here. shim parses the files itself rather than asking libc's
//! `getpwnam`: a static musl build reads the same two files anyway, and the answer must be
//! complete before the fork, after which nothing may allocate.
//!
//! The rules are gosu's, which are runc's, so `docker run --user` gives the same ids:
//! - a name is its first entry in `/etc/passwd`: uid, primary gid and home; its supplementary
//!   groups are the `/etc/group` entries that list it as a member;
//! - a number is the passwd entry with that uid if there is one, exactly as its name would be;
//!   if there is none, that uid with shim's own gid (0 as root), no supplementary groups and
//!   home `/`;
//! - `:GROUP` sets the gid (a name is looked up in `/etc/group`, a number taken as it is) and
//!   leaves no supplementary groups.

use std::fmt;

pub const PASSWD: &str = "/etc/passwd";
pub const GROUP: &str = "/etc/group";

/// One part of the spec. A name stays in the spec's text, which is all a config carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Id {
    Number(u32),
    Name,
}

/// `--user` as given: checked for shape only; [`resolve`] looks it up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserSpec {
    text: String,
    user: Id,
    group: Option<Id>,
}

impl fmt::Display for UserSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl UserSpec {
    /// `app`, `1000`, `app:web`, `1000:1000`: a part made of digits only is a number.
    pub fn parse(text: &str) -> Result<UserSpec, String> {
        let (user, group) = split(text);
        let part = |word: &str| -> Result<Id, String> {
            if word.is_empty() || word.contains(':') {
                return Err(format!("'{text}' is not USER or USER:GROUP"));
            }
            if !word.bytes().all(|b| b.is_ascii_digit()) {
                return Ok(Id::Name);
            }
            number(word.as_bytes()).map(Id::Number).ok_or_else(|| format!("'{word}' is not an id from 0 to {MAX_ID}"))
        };
        Ok(UserSpec { text: text.to_string(), user: part(user)?, group: group.map(part).transpose()? })
    }

    /// The user part's text, and the group part's.
    fn names(&self) -> (&str, &str) {
        let (user, group) = split(&self.text);
        (user, group.unwrap_or(""))
    }
}

fn split(text: &str) -> (&str, Option<&str>) {
    match text.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (text, None),
    }
}

/// The largest id the kernel takes: `(uid_t)-1` means "unchanged" to the set*id calls.
const MAX_ID: u32 = u32::MAX - 1;

/// A decimal id, digits only, that the kernel takes.
fn number(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse::<u32>().ok().filter(|&n| n <= MAX_ID)
}

/// Who the program runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, in the order of `/etc/group`, each once.
    pub groups: Vec<u32>,
    /// For `HOME`, when the caller set none.
    pub home: Vec<u8>,
}

/// The two files as read; `None` for one that does not exist (a `FROM scratch` image).
#[derive(Clone, Copy, Debug, Default)]
pub struct Files<'a> {
    pub passwd: Option<&'a [u8]>,
    pub group: Option<&'a [u8]>,
}

/// Resolve `spec` against `files`; `own_gid` is shim's gid, kept for a uid that has no entry.
/// The error is a fragment that reads after "failed to run as 'SPEC':".
pub fn resolve(spec: &UserSpec, files: Files<'_>, own_gid: u32) -> Result<Identity, String> {
    let (name, group_name) = spec.names();
    let mut identity = match spec.user {
        Id::Name => {
            let passwd = files.passwd.ok_or_else(|| missing(PASSWD, name, "UID:GID"))?;
            let found = accounts(passwd).find(|a| a.name == name.as_bytes());
            of_account(found.ok_or_else(|| format!("no user '{name}' in {PASSWD}"))?, files.group)
        }
        Id::Number(uid) => match files.passwd.and_then(|p| accounts(p).find(|a| a.uid == uid)) {
            Some(account) => of_account(account, files.group),
            None => Identity { uid, gid: own_gid, groups: Vec::new(), home: b"/".to_vec() },
        },
    };
    if let Some(group) = spec.group {
        identity.gid = match group {
            Id::Number(gid) => gid,
            Id::Name => {
                let groups = files.group.ok_or_else(|| missing(GROUP, group_name, "a GID"))?;
                let found = group_entries(groups).find(|g| g.name == group_name.as_bytes());
                found.ok_or_else(|| format!("no group '{group_name}' in {GROUP}"))?.gid
            }
        };
        identity.groups.clear();
    }
    Ok(identity)
}

/// A passwd entry's ids and home, with the groups that list it as a member.
fn of_account(a: Account<'_>, group: Option<&[u8]>) -> Identity {
    Identity {
        uid: a.uid,
        gid: a.gid,
        groups: group.map(|g| memberships(g, a.name)).unwrap_or_default(),
        // An empty home field: `/`, as login(1) would use.
        home: if a.home.is_empty() { b"/".to_vec() } else { a.home.to_vec() },
    }
}

fn missing(file: &str, name: &str, instead: &str) -> String {
    format!("no {file} to look up '{name}' in; give {instead} instead")
}

/// One entry of passwd(5): `name:password:uid:gid:gecos:home:shell`.
struct Account<'a> {
    name: &'a [u8],
    uid: u32,
    gid: u32,
    home: &'a [u8],
}

/// The well-formed entries of a passwd file, in order; a line that is not one (too few
/// fields, an id that is not a number, a comment) is skipped, as musl skips it.
fn accounts(text: &[u8]) -> impl Iterator<Item = Account<'_>> {
    text.split(|&b| b == b'\n').filter_map(|line| {
        let mut field = line.split(|&b| b == b':');
        let name = field.next().filter(|n| !n.is_empty())?;
        let _password = field.next()?;
        let uid = number(field.next()?)?;
        let gid = number(field.next()?)?;
        let _gecos = field.next()?;
        let home = field.next()?;
        let _shell = field.next()?;
        Some(Account { name, uid, gid, home })
    })
}

/// One entry of group(5): `name:password:gid:member,member`.
struct GroupEntry<'a> {
    name: &'a [u8],
    gid: u32,
    members: &'a [u8],
}

fn group_entries(text: &[u8]) -> impl Iterator<Item = GroupEntry<'_>> {
    text.split(|&b| b == b'\n').filter_map(|line| {
        let mut field = line.split(|&b| b == b':');
        let name = field.next().filter(|n| !n.is_empty())?;
        let _password = field.next()?;
        let gid = number(field.next()?)?;
        let members = field.next()?;
        Some(GroupEntry { name, gid, members })
    })
}

/// The gids of every group that lists `user` as a member, each once.
fn memberships(text: &[u8], user: &[u8]) -> Vec<u32> {
    let mut gids = Vec::new();
    for g in group_entries(text) {
        if g.members.split(|&b| b == b',').any(|m| m == user) && !gids.contains(&g.gid) {
            gids.push(g.gid);
        }
    }
    gids
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD_TEXT: &[u8] = b"root:x:0:0:root:/root:/bin/sh
app:x:1234:2345:App:/home/app:/bin/sh
# a comment:x:1:1:::
broken:x:notanumber:1::/:/bin/sh
short:x:7:7
multi:x:1235:2345::/srv/multi:/bin/sh
nohome:x:1236:2345:::/bin/sh
app:x:9999:9999:a second app, never used:/nowhere:/bin/sh
";

    const GROUP_TEXT: &[u8] = b"root:x:0:
appgrp:x:2345:
extra1:x:3001:multi,other
extra2:x:3002:someone,multi
again:x:3001:multi
web:x:4000:app
bad:x:x:multi
multiprefix:x:5000:multiple,mult
";

    fn files() -> Files<'static> {
        Files { passwd: Some(PASSWD_TEXT), group: Some(GROUP_TEXT) }
    }

    fn spec(text: &str) -> UserSpec {
        UserSpec::parse(text).unwrap()
    }

    fn resolved(text: &str, files: Files<'_>) -> Result<Identity, String> {
        resolve(&spec(text), files, 77)
    }

    fn ids(uid: u32, gid: u32, groups: &[u32], home: &str) -> Identity {
        Identity { uid, gid, groups: groups.to_vec(), home: home.as_bytes().to_vec() }
    }

    #[test]
    fn a_name_is_its_first_passwd_entry_with_its_groups() {
        assert_eq!(resolved("app", files()), Ok(ids(1234, 2345, &[4000], "/home/app")));
        assert_eq!(resolved("multi", files()), Ok(ids(1235, 2345, &[3001, 3002], "/srv/multi")));
        assert_eq!(resolved("root", files()), Ok(ids(0, 0, &[], "/root")));
    }

    #[test]
    fn a_number_with_an_entry_is_that_entry() {
        assert_eq!(resolved("1235", files()), resolved("multi", files()));
        assert_eq!(resolved("0", files()), Ok(ids(0, 0, &[], "/root")));
    }

    #[test]
    fn a_number_without_an_entry_keeps_shims_gid_and_has_no_groups() {
        assert_eq!(resolved("4321", files()), Ok(ids(4321, 77, &[], "/")));
        // A FROM-scratch image has neither file.
        assert_eq!(resolved("4321", Files::default()), Ok(ids(4321, 77, &[], "/")));
        assert_eq!(resolved("4321:4321", Files::default()), Ok(ids(4321, 4321, &[], "/")));
    }

    #[test]
    fn a_group_sets_the_gid_and_leaves_no_supplementary_groups() {
        assert_eq!(resolved("multi:web", files()), Ok(ids(1235, 4000, &[], "/srv/multi")));
        assert_eq!(resolved("multi:555", files()), Ok(ids(1235, 555, &[], "/srv/multi")));
        assert_eq!(resolved("4321:appgrp", files()), Ok(ids(4321, 2345, &[], "/")));
        assert_eq!(resolved("app:0", files()), Ok(ids(1234, 0, &[], "/home/app")));
    }

    #[test]
    fn an_empty_home_is_the_root_directory() {
        assert_eq!(resolved("nohome", files()).unwrap().home, b"/");
    }

    #[test]
    fn members_match_whole_names_only() {
        assert_eq!(memberships(GROUP_TEXT, b"mult"), [5000]);
        assert_eq!(memberships(GROUP_TEXT, b"nobody"), [] as [u32; 0]);
    }

    #[test]
    fn malformed_lines_are_skipped_not_matched() {
        assert!(resolved("broken", files()).is_err());
        assert!(resolved("short", files()).is_err());
        assert!(resolved("7", files()).is_ok_and(|i| i.gid == 77), "not the short line's gid 7");
        assert!(resolved("x:bad", files()).is_err());
    }

    #[test]
    fn names_that_cannot_be_resolved_say_why() {
        assert_eq!(resolved("nosuch", files()).unwrap_err(), "no user 'nosuch' in /etc/passwd");
        assert_eq!(resolved("app:nosuch", files()).unwrap_err(), "no group 'nosuch' in /etc/group");
        assert_eq!(
            resolved("app", Files::default()).unwrap_err(),
            "no /etc/passwd to look up 'app' in; give UID:GID instead"
        );
        let no_group = Files { passwd: Some(PASSWD_TEXT), group: None };
        assert_eq!(resolved("app:web", no_group).unwrap_err(), "no /etc/group to look up 'web' in; give a GID instead");
        // Without /etc/group a name still resolves, with no supplementary groups.
        assert_eq!(resolved("multi", no_group), Ok(ids(1235, 2345, &[], "/srv/multi")));
    }

    #[test]
    fn the_spec_is_user_or_user_colon_group() {
        assert_eq!(spec("app"), UserSpec { text: "app".into(), user: Id::Name, group: None });
        assert_eq!(spec("1000:web").group, Some(Id::Name));
        assert_eq!(spec("1000:web").names(), ("1000", "web"));
        assert_eq!(spec("app:1000").group, Some(Id::Number(1000)));
        assert_eq!(spec("007").user, Id::Number(7));
        // Not digits only: a name, which /etc/passwd will not have.
        assert_eq!(spec("-1").user, Id::Name);
        assert_eq!(spec("4294967294").user, Id::Number(MAX_ID));
        for bad in ["", ":", "app:", ":web", "a:b:c"] {
            assert_eq!(UserSpec::parse(bad).unwrap_err(), format!("'{bad}' is not USER or USER:GROUP"));
        }
        assert_eq!(UserSpec::parse("4294967295").unwrap_err(), "'4294967295' is not an id from 0 to 4294967294");
        assert!(UserSpec::parse("app:99999999999").is_err());
        assert_eq!(spec("app:web").to_string(), "app:web");
    }
}
