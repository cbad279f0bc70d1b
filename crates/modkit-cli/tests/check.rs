//! `modkit check`: its place in `--list`, its exit statuses and its lines, on the sample
//! modules in a scratch tree with a synthetic Module.symvers.
#![forbid(unsafe_code)]

use std::process::{Command, Output};

use modkit_testkit::Scratch;

fn modkit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modkit"))
        .args(args)
        .output()
        .unwrap()
}

fn fixture(path: &str) -> std::path::PathBuf {
    modkit_testkit::workspace_root()
        .join("kmods/fixtures")
        .join(path)
}

/// A root with `lib/modules/6.1.0-56-amd64` holding hello_api (indexed as modules.dep says,
/// no binary indexes) and a Module.symvers with what the sample modules need but `api_test`.
fn root(name: &str) -> Scratch {
    let scratch = Scratch::new(name);
    let dir = "lib/modules/6.1.0-56-amd64";
    scratch.write(
        format!("{dir}/extra/hello_api.ko"),
        std::fs::read(fixture("6.1/hello_api.ko")).unwrap(),
    );
    scratch.write(format!("{dir}/modules.dep"), "extra/hello_api.ko:\n");
    let mut symvers = String::new();
    for module in ["6.1/hello_api.ko", "6.1/hello_feature.ko"] {
        let bytes = std::fs::read(fixture(module)).unwrap();
        let parsed = modkit::elf::Module::parse(&bytes).unwrap();
        for v in parsed.versions().unwrap() {
            if v.name != "api_test" && !symvers.contains(&format!("\t{}\t", v.name)) {
                symvers.push_str(&format!(
                    "{:#010x}\t{}\tvmlinux\tEXPORT_SYMBOL\t\n",
                    v.crc, v.name
                ));
            }
        }
    }
    scratch.write("Module.symvers", symvers);
    scratch
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_is_listed_and_explains_itself() {
    let list = modkit(&["--list"]);
    assert!(text(&list.stdout).lines().any(|l| l == "check"));
    let help = modkit(&["check", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(text(&help.stdout).contains("Module.symvers"));
}

#[test]
fn verdicts_and_exit_statuses() {
    let root = root("cli-check");
    let symvers = root.join("Module.symvers");
    let base = [
        "check",
        "-b",
        root.path().to_str().unwrap(),
        "-k",
        "6.1.0-56-amd64",
    ];
    let run = |extra: &[&str]| {
        let mut args: Vec<&str> = base.to_vec();
        args.push("--symvers");
        args.push(symvers.to_str().unwrap());
        args.extend_from_slice(extra);
        modkit(&args)
    };

    // Without the tree's hello_api in the way, hello_feature from its own directory: found
    // through the tree, loaded first.
    let feature = fixture("6.1/hello_feature.ko");
    let out = run(&[feature.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        format!(
            "check: WARNING: {}: no readable in-tree module (intree=Y) in modules.dep or modules.order to take the kernel's vermagic from: vermagic, ELF machine and class are not checked\n",
            root.join("lib/modules/6.1.0-56-amd64").display()
        )
    );
    assert_eq!(
        text(&out.stdout),
        format!(
            "hello_feature ({}): would load (after hello_api)\n  warning: hello_feature: loading out-of-tree module taints kernel.\n",
            feature.display()
        )
    );

    // The same module alone in a directory, with a tree lacking hello_api: refused.
    std::fs::remove_file(root.join("lib/modules/6.1.0-56-amd64/extra/hello_api.ko")).unwrap();
    root.write("lib/modules/6.1.0-56-amd64/modules.dep", "");
    let lone = root.write("lone/hello_feature.ko", std::fs::read(&feature).unwrap());
    let out = run(&["--json", lone.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let json = text(&out.stdout);
    assert!(
        json.contains(
            r#""would_load":"no","errno":{"number":2,"text":"No such file or directory"}"#
        ),
        "{json}"
    );
    assert!(
        json.contains(r#""kind":"unknown-symbol","message":"Unknown symbol api_test (err -2)""#),
        "{json}"
    );

    // Input errors: exit 2, the file named.
    let out = modkit(
        &[
            &base[..],
            &["--symvers", "/nonexistent/Module.symvers", "x"],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "check: ERROR: could not read /nonexistent/Module.symvers: No such file or directory (os error 2)\n"
    );
}

fn signed(name: &str) -> std::path::PathBuf {
    modkit_testkit::workspace_root()
        .join("crates/modkit-elf/testdata/sig")
        .join(name)
}

#[test]
fn signatures_enforced_with_certificates() {
    let root = root("cli-check-sig");
    let symvers = root.join("Module.symvers");
    let certs = signed("trusted.pem");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "check",
            "-b",
            root.path().to_str().unwrap(),
            "-k",
            "6.1.0-56-amd64",
            "--symvers",
            symvers.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        modkit(&args)
    };
    let good = signed("hello_api.sha256.ko");
    let stranger = signed("hello_api.stranger.ko");
    let out = run(&[
        "--sig-enforce",
        "--certs",
        certs.to_str().unwrap(),
        good.to_str().unwrap(),
        stranger.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!(
            "hello_api ({}): would load\n  warning: hello_api: loading out-of-tree module taints kernel.\n\
             hello_api ({}): would not load: Key was rejected by service\n  \
             error: hello_api: Loading of module with unavailable key is rejected (no trusted certificate has the signer's issuer 'CN=another signing key,O=elsewhere' and serial 02)\n  \
             warning: hello_api: loading out-of-tree module taints kernel.\n",
            good.display(),
            stranger.display()
        )
    );

    // Not enforced: the unknown key taints; a changed module is refused all the same.
    let tampered = signed("hello_api.tampered.ko");
    let out = run(&[
        "--json",
        "--certs",
        signed("trusted.x509").to_str().unwrap(),
        stranger.to_str().unwrap(),
        tampered.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let json = text(&out.stdout);
    let lines: Vec<&str> = json.lines().collect();
    assert_eq!(lines.len(), 2, "{json}");
    assert!(lines[0].contains(r#""would_load":"yes""#), "{json}");
    assert!(lines[0].contains(r#""kind":"taint-E""#), "{json}");
    assert!(
        lines[1].contains(r#""errno":{"number":129,"text":"Key was rejected by service"}"#),
        "{json}"
    );
    assert!(lines[1].contains(r#""kind":"signature""#), "{json}");

    // module.sig_enforce=1 on the target's command line (--cmdline) enforces as --sig-enforce
    // does; =0 and a missing file do not.
    let cmdline = root.write(
        "cmdline",
        "BOOT_IMAGE=/vmlinuz quiet module.sig_enforce=1\n",
    );
    let cert = signed("trusted.x509");
    let args = |cmdline: &std::path::Path| {
        vec![
            "--cmdline".to_owned(),
            cmdline.display().to_string(),
            "--certs".to_owned(),
            cert.display().to_string(),
            stranger.display().to_string(),
        ]
    };
    let strings = |v: &[String]| run(&v.iter().map(String::as_str).collect::<Vec<_>>());
    let out = strings(&args(&cmdline));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout)
            .contains("error: hello_api: Loading of module with unavailable key is rejected"),
        "{}",
        text(&out.stdout)
    );
    let off = root.write("cmdline-off", "quiet module.sig_enforce=0\n");
    let out = strings(&args(&off));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let out = strings(&args(&root.join("no-such-cmdline")));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "check: ERROR: could not read {}: No such file or directory\n",
            root.join("no-such-cmdline").display()
        )
    );

    // Enforced without certificates and without the image under the root: an input error.
    let out = run(&["--sig-enforce", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "check: ERROR: signatures are enforced but no trusted certificates were given and {} does not exist: give --certs FILE or --vmlinux FILE\n",
            root.join("boot/vmlinuz-6.1.0-56-amd64").display()
        )
    );
    // A certificate file that is none, and an image that is none: named.
    let out = run(&["--certs", symvers.to_str().unwrap(), good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "check: ERROR: {}: certificate at offset 0x0: expected a DER SEQUENCE (30 82 ...) or a PEM certificate\n",
            symvers.display()
        )
    );
    let out = run(&["--vmlinux", good.to_str().unwrap(), good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "check: ERROR: {}: no X.509 certificate in it\n",
            good.display()
        )
    );
}
