//! The `check` scenarios: for each case, `modkit check` says whether the running kernel would
//! accept a module and why not; then `insmod` asks the kernel. They must agree: the verdict,
//! the errno (insmod's message is kmod's text for it), and check's words must be the kernel's
//! log line. A "would load" the kernel refuses is the worst failure and is named as such.
//!
//! The target is the running kernel: its tree, configuration, `Module.symvers` and built-in
//! certificates under `vmtest::check::ROOT` (the host put them there). `check-sig` runs under
//! `module.sig_enforce=1`, which check must learn from the running kernel itself.

use vmtest::check::{CASES_DIR, CERTS, OTHER_KERNEL, ROOT, SIGNED_MODULE};
use vmtest::protocol::ROW;
use vmtest::{MODKIT, check::CASE_MODULES};

use super::{Ctx, kernel_release};

/// What `modkit check --json` said about one module.
#[derive(Debug, Default)]
struct Verdict {
    name: String,
    /// `None`: would load.
    errno: Option<i64>,
    /// The modules to load first, in order.
    dependencies: Vec<String>,
    /// The first refusal: its kind and the kernel's log line check predicts.
    refusal: Option<(String, String)>,
}

/// Cases of the plain boot: (label, module file).
fn plain_cases() -> Vec<(&'static str, String)> {
    let case = |name: &str| format!("{CASES_DIR}/{name}.ko");
    vec![
        ("control", case("check_control")),
        ("untrusted key, not enforced", case("check_signed")),
        ("missing dependency", case("check_missing")),
        ("other kernel", OTHER_KERNEL.to_string()),
        ("crc", case("check_crc")),
        ("proprietary", case("check_proprietary")),
    ]
}

/// `modkit check` and insmod agree on each case, signatures not enforced.
pub fn check(ctx: &mut Ctx<'_>) {
    ctx.check(
        CASE_MODULES
            .iter()
            .all(|m| plain_cases().iter().any(|(_, f)| f.contains(m))),
        "every case module of vmtest::check::CASE_MODULES is a case",
    );
    run_cases(ctx, &plain_cases());
}

/// Under `module.sig_enforce=1`: unsigned and untrusted modules refused, the kernel's own
/// signed module loads.
pub fn check_sig(ctx: &mut Ctx<'_>) {
    let own = format!(
        "{ROOT}/lib/modules/{}/{SIGNED_MODULE}.{}",
        kernel_release(),
        ctx.env.module_ext
    );
    let cases = vec![
        ("unsigned", format!("{CASES_DIR}/check_control.ko")),
        ("untrusted key", format!("{CASES_DIR}/check_signed.ko")),
        ("signed by the kernel's key", own),
    ];
    let enforced =
        std::fs::read_to_string("/sys/module/module/parameters/sig_enforce").unwrap_or_default();
    ctx.check(
        enforced.trim() == "Y",
        format!("/sys/module/module/parameters/sig_enforce reads Y ({enforced:?})"),
    );
    run_cases(ctx, &cases);
}

fn run_cases(ctx: &mut Ctx<'_>, cases: &[(&str, String)]) {
    let release = kernel_release();
    let out = ctx.run(&["/sbin/depmod", "-b", ROOT, &release]);
    ctx.expect_success(&out);
    let (mut agreed, mut false_loads) = (0, 0);
    for (label, file) in cases {
        match case(ctx, label, file) {
            Agreement::Agree => agreed += 1,
            Agreement::FalseLoad => false_loads += 1,
            Agreement::Disagree => {}
        }
    }
    ctx.log(format!(
        "  cases: {agreed} of {} agree, {false_loads} false \"would load\"",
        cases.len()
    ));
    ctx.check(
        agreed == cases.len() && !cases.is_empty(),
        "check and the kernel agree on every case",
    );
}

enum Agreement {
    Agree,
    Disagree,
    /// check said it would load; the kernel refused it.
    FalseLoad,
}

fn case(ctx: &mut Ctx<'_>, label: &str, file: &str) -> Agreement {
    ctx.log(format!("  case {label}: {file}"));
    // No --sig-enforce: check must find out from the running kernel.
    let out = ctx.run(&[
        MODKIT, "check", "-b", ROOT, "--certs", CERTS, "--json", file,
    ]);
    let verdict = match parse_verdict(&out.stdout) {
        Ok(verdict) => verdict,
        Err(why) => {
            ctx.check(false, format!("check --json prints one verdict: {why}"));
            return Agreement::Disagree;
        }
    };
    let want_status = if verdict.errno.is_none() { 0 } else { 1 };
    ctx.check(
        out.status == Some(want_status),
        format!("check exits with {want_status}"),
    );
    let mut loaded_deps = Vec::new();
    for dep in &verdict.dependencies {
        let out = ctx.run(&["/sbin/modprobe", "-d", ROOT, dep]);
        if ctx.expect_success(&out) {
            loaded_deps.push(dep.clone());
        }
    }
    let insmod = ctx.run(&["/sbin/insmod", file]);
    let accepted = insmod.success();
    let agreement = match (&verdict.errno, accepted) {
        (None, true) => Agreement::Agree,
        (None, false) => Agreement::FalseLoad,
        (Some(_), true) => Agreement::Disagree,
        (Some(errno), false) => {
            let text = modkit_syscalls::LoadFailure::from_errno(modkit_syscalls::Errno(
                i32::try_from(*errno).unwrap_or(i32::MAX),
            ))
            .kmod_message();
            let said = format!("could not insert module {file}: {text}");
            let same_errno = ctx.expect_stderr(&insmod, &said);
            let (_, line) = verdict.refusal.clone().unwrap_or_default();
            let same_words = ctx.expect_kmsg(&insmod, &line);
            if same_errno && same_words {
                Agreement::Agree
            } else {
                Agreement::Disagree
            }
        }
    };
    let kernel = if accepted { "loaded" } else { "refused" };
    let predicted = match verdict.errno {
        None => "would load".to_string(),
        Some(errno) => format!(
            "refuses: {}",
            modkit_syscalls::Errno(i32::try_from(errno).unwrap_or(i32::MAX)).strerror()
        ),
    };
    let (agree, how) = match agreement {
        Agreement::Agree => (true, "agree"),
        Agreement::FalseLoad => (false, "FALSE \"would load\""),
        Agreement::Disagree => (false, "DISAGREE"),
    };
    ctx.log(format!(
        "{ROW}{label:<28} check: {predicted:<36} kernel: {kernel:<8} {how}"
    ));
    ctx.check(
        agree,
        format!("case {label}: check: {predicted}; kernel: {kernel}"),
    );
    if accepted {
        let out = ctx.run(&["/sbin/rmmod", &verdict.name]);
        ctx.expect_success(&out);
    }
    for dep in loaded_deps.iter().rev() {
        let out = ctx.run(&["/sbin/rmmod", dep]);
        ctx.expect_success(&out);
    }
    agreement
}

/// The one object `modkit check --json FILE` prints.
fn parse_verdict(stdout: &str) -> Result<Verdict, String> {
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    let [line] = lines[..] else {
        return Err(format!("{} lines", lines.len()));
    };
    let value = Json::parse(line)?;
    let text = |v: Option<&Json>| match v {
        Some(Json::Str(s)) => Some(s.clone()),
        _ => None,
    };
    let name = text(value.get("module")).ok_or("no \"module\"")?;
    let errno = match value.get("errno") {
        Some(Json::Null) => None,
        Some(errno) => match errno.get("number") {
            Some(Json::Num(n)) => Some(*n),
            _ => return Err("\"errno\" has no number".into()),
        },
        None => return Err("no \"errno\"".into()),
    };
    let dependencies = match value.get("dependencies") {
        Some(Json::Arr(items)) => items.iter().filter_map(|i| text(Some(i))).collect(),
        _ => return Err("no \"dependencies\"".into()),
    };
    let refusal = match value.get("findings") {
        Some(Json::Arr(items)) => items
            .iter()
            .find(|f| matches!(f.get("errno"), Some(Json::Num(_))))
            .map(|f| {
                (
                    text(f.get("kind")).unwrap_or_default(),
                    text(f.get("kernel_log")).unwrap_or_default(),
                )
            }),
        _ => return Err("no \"findings\"".into()),
    };
    if errno.is_some() != refusal.is_some() {
        return Err("an errno without a refusal, or a refusal without an errno".into());
    }
    Ok(Verdict {
        name,
        errno,
        dependencies,
        refusal,
    })
}

/// The JSON the CLI writes (crates/modkit-cli/src/json.rs): objects, arrays, strings,
/// non-negative integers and null; the guest links no JSON crate.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Num(i64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn parse(text: &str) -> Result<Json, String> {
        let chars: Vec<char> = text.chars().collect();
        let mut at = 0;
        let value = Json::value(&chars, &mut at)?;
        if at != chars.len() {
            return Err(format!("text after the value at {at}"));
        }
        Ok(value)
    }

    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn value(c: &[char], at: &mut usize) -> Result<Json, String> {
        let bad = |at: usize, what: &str| format!("{what} at {at}");
        match c.get(*at) {
            Some('n') if c[*at..].starts_with(&['n', 'u', 'l', 'l']) => {
                *at += 4;
                Ok(Json::Null)
            }
            Some('0'..='9') => {
                let start = *at;
                while c.get(*at).is_some_and(char::is_ascii_digit) {
                    *at += 1;
                }
                let digits: String = c[start..*at].iter().collect();
                digits
                    .parse()
                    .map(Json::Num)
                    .map_err(|_| bad(start, "a number out of range"))
            }
            Some('"') => Json::string(c, at).map(Json::Str),
            Some('[') => {
                *at += 1;
                let mut items = Vec::new();
                if c.get(*at) == Some(&']') {
                    *at += 1;
                    return Ok(Json::Arr(items));
                }
                loop {
                    items.push(Json::value(c, at)?);
                    match c.get(*at) {
                        Some(',') => *at += 1,
                        Some(']') => {
                            *at += 1;
                            return Ok(Json::Arr(items));
                        }
                        _ => return Err(bad(*at, "expected , or ]")),
                    }
                }
            }
            Some('{') => {
                *at += 1;
                let mut fields = Vec::new();
                if c.get(*at) == Some(&'}') {
                    *at += 1;
                    return Ok(Json::Obj(fields));
                }
                loop {
                    let key = Json::string(c, at)?;
                    if c.get(*at) != Some(&':') {
                        return Err(bad(*at, "expected :"));
                    }
                    *at += 1;
                    fields.push((key, Json::value(c, at)?));
                    match c.get(*at) {
                        Some(',') => *at += 1,
                        Some('}') => {
                            *at += 1;
                            return Ok(Json::Obj(fields));
                        }
                        _ => return Err(bad(*at, "expected , or }")),
                    }
                }
            }
            _ => Err(bad(*at, "expected a value")),
        }
    }

    fn string(c: &[char], at: &mut usize) -> Result<String, String> {
        if c.get(*at) != Some(&'"') {
            return Err(format!("expected a string at {at}"));
        }
        *at += 1;
        let mut out = String::new();
        loop {
            match c.get(*at) {
                None => return Err("unterminated string".into()),
                Some('"') => {
                    *at += 1;
                    return Ok(out);
                }
                Some('\\') => {
                    let escaped = match c.get(*at + 1) {
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some('r') => '\r',
                        Some('u') => {
                            let hex: String =
                                c.get(*at + 2..*at + 6).unwrap_or(&[]).iter().collect();
                            let code = u32::from_str_radix(&hex, 16)
                                .ok()
                                .and_then(char::from_u32)
                                .ok_or_else(|| format!("bad \\u escape at {at}"))?;
                            *at += 4;
                            code
                        }
                        Some(other) => *other,
                        None => return Err("unterminated escape".into()),
                    };
                    out.push(escaped);
                    *at += 2;
                }
                Some(other) => {
                    out.push(*other);
                    *at += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        let refused = r#"{"module":"check_crc","path":"/check/cases/check_crc.ko","would_load":"no","errno":{"number":22,"text":"Invalid argument"},"dependencies":["hello_api"],"findings":[{"kind":"taint-O","message":"loading out-of-tree module taints kernel.","kernel_log":"check_crc: loading out-of-tree module taints kernel.","note":null,"errno":null},{"kind":"crc","message":"disagrees about version of symbol api_test","kernel_log":"check_crc: disagrees about version of symbol api_test","note":"the \"module\"\tx","errno":22}]}"#;
        let v = parse_verdict(&format!("{refused}\n")).unwrap();
        assert_eq!(v.name, "check_crc");
        assert_eq!(v.errno, Some(22));
        assert_eq!(v.dependencies, ["hello_api"]);
        assert_eq!(
            v.refusal,
            Some((
                "crc".into(),
                "check_crc: disagrees about version of symbol api_test".into()
            ))
        );
        let loads = r#"{"module":"m","path":"p","would_load":"yes","errno":null,"dependencies":[],"findings":[]}"#;
        let v = parse_verdict(loads).unwrap();
        assert_eq!((v.errno, v.refusal), (None, None));
        assert!(parse_verdict("").is_err());
        assert!(parse_verdict(&format!("{loads}\n{loads}")).is_err());
        let inconsistent = r#"{"module":"m","path":"p","would_load":"no","errno":{"number":2},"dependencies":[],"findings":[]}"#;
        assert!(parse_verdict(inconsistent).is_err());
        for prefix in (0..refused.len()).map(|n| &refused[..n]) {
            assert!(Json::parse(prefix).is_err(), "{prefix}");
        }
        assert_eq!(
            Json::parse(r#""a\u00e9\\""#),
            Ok(Json::Str("a\u{e9}\\".into()))
        );
    }
}
