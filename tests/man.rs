//! The man pages (man/*.8) against the binary's `--help`: every option an applet or subcommand
//! lists is documented, and every option a page documents exists. Strict on option names, blind
//! to wording, so a reworded help text does not fail it and a renamed option does.
//!
//! What is read on each side:
//! - `--help`: the lines that start, after at most 6 spaces, with `-`; their first column (up to
//!   two spaces) holds the names (`-c, --check MANIFEST`, `--direct-io[=<on|off>]`). The
//!   commands are the first words of the lines under `Commands:` (argh's layout). `-h`/`--help`
//!   are everywhere and ignored.
//! - the page: the tag line after each `.TP` in `.SH OPTIONS` (the applet's own options) and in
//!   `.SH COMMANDS`, where each command has a `.SS` named by its path (`.SS "trial take"`) and
//!   its options are the `.TP` tags up to the next `.SS`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The binary under test; MAN_CHECK_BIN=path checks another build (say, a branch's) against
/// these pages. The pages document every applet and option: give a build with the `publisher`
/// feature (build/publisher/liveroot), not the box's build/liveroot, which lacks `publish` and
/// imgcheck's writers.
fn bin() -> PathBuf {
    std::env::var_os("MAN_CHECK_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_liveroot")),
        PathBuf::from,
    )
}

fn man_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("man")
}

/// The page of an applet: liveroot-APPLET.8 (packaged under that name, so that liveroot's
/// losetup never clashes with util-linux's losetup.8).
fn page_of(applet: &str) -> PathBuf {
    man_dir().join(format!("liveroot-{applet}.8"))
}

fn help(args: &[&str]) -> String {
    let out = Command::new(bin())
        .args(args)
        .arg("--help")
        .output()
        .expect("run liveroot");
    assert!(
        out.status.success(),
        "liveroot {} --help: {:?}",
        args.join(" "),
        out.status
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Option names in a piece of text: words starting with `-` after a blank or punctuation,
/// cut at the first character that cannot be in a name (`--direct-io[=on|off]` → `--direct-io`).
fn option_names(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let starts = chars[i] == '-'
            && (i == 0 || matches!(chars[i - 1], ' ' | '\t' | ',' | '[' | '|' | '(' | '"' | '{'));
        if !starts {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < chars.len() && (chars[j] == '-' || chars[j].is_ascii_alphanumeric()) {
            j += 1;
        }
        let word: String = chars[i..j].iter().collect();
        let dashes = word.chars().take_while(|&c| c == '-').count();
        if (1..=2).contains(&dashes)
            && word.len() > dashes
            && word[dashes..].starts_with(|c: char| c.is_ascii_alphanumeric())
        {
            names.push(word);
        }
        i = j.max(i + 1);
    }
    names
}

fn ignored(name: &str) -> bool {
    name == "-h" || name == "--help"
}

fn help_options(text: &str) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    for line in text.lines() {
        let rest = line.trim_start();
        let indent = line.len() - rest.len();
        if indent > 6 || !rest.starts_with('-') {
            continue;
        }
        // The names, then a metavariable or the description: argh leaves one space only after
        // a long name (`--allow-downgrade with --newer-than/...`), so stop at the first word
        // that is not an option.
        for word in rest.split_whitespace().take_while(|w| w.starts_with('-')) {
            set.extend(option_names(word).into_iter().filter(|n| !ignored(n)));
        }
    }
    set
}

fn help_commands(text: &str) -> Vec<String> {
    let mut cmds = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.trim_end() == "Commands:" {
            inside = true;
            continue;
        }
        if !inside {
            continue;
        }
        if !line.is_empty() && !line.starts_with(' ') {
            break;
        }
        let rest = line.trim_start();
        if line.len() - rest.len() == 2 {
            if let Some(word) = rest.split_whitespace().next() {
                cmds.push(word.to_owned());
            }
        }
    }
    cmds
}

/// roff to plain text, enough for tags and headings: `\-` is a dash, font changes go, quotes
/// that group macro arguments go.
fn unroff(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            if c != '"' {
                out.push(c);
            }
            continue;
        }
        match it.next() {
            Some('-') => out.push('-'),
            Some('f') => {
                it.next();
            }
            Some('e') => out.push('\\'),
            Some('&') => {}
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => {}
        }
    }
    out
}

#[derive(Default)]
struct Page {
    /// "" for `.SH OPTIONS`, the command path for a `.SS` under `.SH COMMANDS`.
    options: BTreeMap<String, BTreeSet<String>>,
    commands: BTreeSet<String>,
}

fn read_page(path: &Path) -> Page {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut page = Page::default();
    let mut section = String::new();
    let mut sub: Option<String> = None;
    let mut tag_next = false;
    for line in text.lines() {
        let (mac, args) = match line.strip_prefix('.') {
            Some(l) => {
                let mut p = l.splitn(2, char::is_whitespace);
                (
                    p.next().unwrap_or(""),
                    unroff(p.next().unwrap_or("")).trim().to_owned(),
                )
            }
            None => ("", unroff(line)),
        };
        if tag_next {
            tag_next = false;
            let key = match section.as_str() {
                "OPTIONS" => Some(String::new()),
                "COMMANDS" => sub.clone(),
                _ => None,
            };
            if let Some(key) = key {
                page.options
                    .entry(key)
                    .or_default()
                    .extend(option_names(&args));
            }
            continue;
        }
        match mac {
            "SH" => {
                section = args.to_uppercase();
                sub = None;
            }
            "SS" if section == "COMMANDS" => {
                page.commands.insert(args.clone());
                sub = Some(args);
            }
            "TP" => tag_next = true,
            _ => {}
        }
    }
    page
}

/// Compare one applet's help tree with its page; push every mismatch.
fn check_applet(applet: &str, errors: &mut Vec<String>) {
    let path = page_of(applet);
    if !path.exists() {
        errors.push(format!("{applet}: no man page {}", path.display()));
        return;
    }
    let page = read_page(&path);
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let mut seen = BTreeSet::new();
    let mut todo: Vec<Vec<String>> = vec![Vec::new()];
    while let Some(cmd) = todo.pop() {
        let mut args = vec![applet];
        args.extend(cmd.iter().map(String::as_str));
        let text = help(&args);
        let key = cmd.join(" ");
        let what = if key.is_empty() {
            applet.to_owned()
        } else {
            format!("{applet} {key}")
        };
        if !key.is_empty() {
            if !page.commands.contains(&key) {
                errors.push(format!(
                    "{name}: no `.SS \"{key}\"` under COMMANDS for `{what}`"
                ));
            }
            seen.insert(key.clone());
        }
        let in_help = help_options(&text);
        let empty = BTreeSet::new();
        let in_page = page.options.get(&key).unwrap_or(&empty);
        for o in in_help.difference(in_page) {
            errors.push(format!(
                "{name}: `{what} --help` lists {o}, the page does not document it"
            ));
        }
        for o in in_page.difference(&in_help) {
            errors.push(format!(
                "{name}: documents {o} for `{what}`, which `--help` does not list"
            ));
        }
        for c in help_commands(&text) {
            let mut next = cmd.clone();
            next.push(c);
            todo.push(next);
        }
    }
    for c in page.commands.difference(&seen) {
        errors.push(format!(
            "{name}: documents command `{applet} {c}`, which `--help` does not list"
        ));
    }
}

fn applets() -> Vec<String> {
    let out = Command::new(bin())
        .arg("--list")
        .output()
        .expect("run liveroot --list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn parsers_read_the_three_help_layouts() {
    let getopt = " -d, --detach <loopdev>...     detach\n     --direct-io[=<on|off>]    O_DIRECT\n -h, --help   help\n";
    let hand = "  -c, --check MANIFEST\n                      check (- is stdin) --not-this\n  --salt HEX   salt\n";
    let argh = "Options:\n  --origin          origin\n  -n, --dry-run     say\n  --allow-downgrade with --newer-than\n  --help, help      usage\n\nCommands:\n  take              Before\n                    more\n  status            Print\n";
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        help_options(getopt),
        set(&["--detach", "--direct-io", "-d"])
    );
    assert_eq!(help_options(hand), set(&["--check", "--salt", "-c"]));
    assert_eq!(
        help_options(argh),
        set(&["--allow-downgrade", "--dry-run", "--origin", "-n"])
    );
    assert_eq!(help_commands(argh), ["take", "status"]);
    assert_eq!(
        option_names(&unroff(r#".BR \-\-direct\-io [ =on | off ]"#)),
        ["--direct-io"]
    );
    assert_eq!(
        option_names(&unroff(r#"\fB\-o\fR, \fB\-\-offset\fR \fINUM\fR"#)),
        ["-o", "--offset"]
    );
}

#[test]
fn every_applet_has_a_page_that_matches_its_help() {
    let mut errors = Vec::new();
    let list = applets();
    assert!(!list.is_empty());
    for a in &list {
        check_applet(a, &mut errors);
    }

    // The multicall binary: the options of its usage lines, and every applet named.
    let page = man_dir().join("liveroot.8");
    let text = help(&[]);
    let usage: BTreeSet<String> = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .flat_map(option_names)
        .filter(|n| !ignored(n))
        .collect();
    let documented = read_page(&page).options.remove("").unwrap_or_default();
    for o in usage.difference(&documented) {
        errors.push(format!(
            "liveroot.8: `liveroot --help` lists {o}, the page does not document it"
        ));
    }
    for o in documented.difference(&usage) {
        errors.push(format!(
            "liveroot.8: documents {o}, which `liveroot --help` does not list"
        ));
    }
    let raw = std::fs::read_to_string(&page).unwrap_or_default();
    for a in &list {
        if !raw.contains(&format!("liveroot\\-{a} (8)")) {
            errors.push(format!("liveroot.8: does not refer to liveroot-{a}(8)"));
        }
    }

    // No page for an applet that is gone.
    for e in std::fs::read_dir(man_dir()).expect("man/") {
        let f = e
            .expect("man/ entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if let Some(a) = f
            .strip_prefix("liveroot-")
            .and_then(|f| f.strip_suffix(".8"))
        {
            if !list.iter().any(|x| x == a) {
                errors.push(format!("man/{f}: no applet {a} in `liveroot --list`"));
            }
        }
    }
    assert!(
        errors.is_empty(),
        "man pages and --help disagree:\n  {}",
        errors.join("\n  ")
    );
}
