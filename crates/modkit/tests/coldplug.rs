//! Coldplug against a recording kernel over the fake module directory and modkit-sysfs's fake
//! QEMU sysfs tree: the plan (order, skips, options, soft dependencies, install commands), the
//! worker pool's exact calls with one and with several threads, and rounds for devices that
//! appear once a bus driver is loaded.
#![forbid(unsafe_code)]

mod common;

use std::collections::HashMap;
use std::ffi::CStr;
use std::fs::File;
use std::path::PathBuf;

use common::FakeTree;
use modkit::Recorder;
use modkit::coldplug::{Outcome, Plan, SkipReason, coldplug, plan, run};
use modkit::syscalls::{
    Call, Errno, Kernel, LoadMethod, LockedKernel, ProcDir, RecordingKernel, SysModule, Syscall,
};

fn names(plan: &Plan) -> Vec<&str> {
    plan.steps.iter().map(|s| s.name.as_str()).collect()
}

fn planned(tree: &FakeTree, config: &str, kernel: &RecordingKernel) -> Plan {
    let mut ctx = tree.context(config);
    let devices = tree.sysfs().all_modaliases().unwrap();
    plan(&mut ctx, kernel, devices, &mut Recorder::default()).unwrap()
}

#[test]
fn every_device_gets_its_modules_in_dependency_order() {
    let tree = FakeTree::new("coldplug-plan");
    let kernel = tree.kernel();
    let plan = planned(&tree, "blacklist atkbd\n", &kernel);
    assert_eq!(
        names(&plan),
        [
            "drm",
            "bochs",
            "virtio",
            "virtio_ring",
            "virtio_pci",
            "virtio_net",
            "virtio_blk",
            "usbcore",
            "xhci_hcd",
            "xhci_pci",
            "usb_storage",
            "scsi_mod",
            "sd_mod",
        ]
    );
    let skipped: Vec<(&str, SkipReason)> = plan
        .skipped
        .iter()
        .map(|s| (s.name.as_str(), s.reason))
        .collect();
    assert_eq!(
        skipped,
        [
            ("i8042", SkipReason::Builtin),
            ("atkbd", SkipReason::Blacklisted),
            ("8250", SkipReason::Builtin),
        ]
    );
    assert_eq!(
        plan.unmatched,
        ["pci:v00008086d00001237sv00001AF4sd00001100bc06sc00i00"]
    );
    let pci = &plan.steps[4];
    assert_eq!(pci.deps, [2, 3]);
    assert_eq!(
        pci.modaliases,
        [
            "pci:v00001AF4d00001000sv00001AF4sd00001100bc02sc00i00",
            "pci:v00001AF4d00001001sv00001AF4sd00001100bc01sc00i00"
        ]
    );
}

#[test]
fn loaded_modules_are_skipped_and_options_passed() {
    let tree = FakeTree::new("coldplug-loaded");
    tree.set_loaded("virtio");
    tree.set_loaded("bochs");
    let kernel = tree.kernel();
    let plan = planned(&tree, "options virtio_blk queue_depth=8\n", &kernel);
    assert!(!names(&plan).contains(&"virtio"));
    assert!(!names(&plan).contains(&"bochs"));
    assert!(
        plan.skipped
            .iter()
            .any(|s| s.name == "bochs" && s.reason == SkipReason::Loaded)
    );
    let blk = plan.steps.iter().find(|s| s.name == "virtio_blk").unwrap();
    assert_eq!(blk.params, "queue_depth=8");
}

#[test]
fn one_job_loads_in_plan_order_with_exact_calls() {
    let tree = FakeTree::new("coldplug-run1");
    let kernel = tree.kernel();
    let plan = planned(&tree, "blacklist atkbd\noptions sd_mod x=1\n", &kernel);
    let kernel = LockedKernel::new(kernel);
    let outcomes = run(&plan, &kernel, &mut Recorder::default(), 1);
    let kernel = kernel.into_inner();
    assert!(
        outcomes
            .iter()
            .all(|o| *o == Outcome::Loaded(LoadMethod::Finit))
    );
    let expected: Vec<Call> = plan
        .steps
        .iter()
        .map(|s| Call::FinitModule {
            file: tree.module_path(&s.name),
            size: format!("fake {}\n", s.name).len() as u64,
            params: s.params.clone(),
            flags: 0,
        })
        .collect();
    assert_eq!(kernel.calls(), expected);
    assert!(matches!(&kernel.calls()[12], Call::FinitModule { params, .. } if params == "x=1"));
}

#[test]
fn a_failed_dependency_stops_its_dependents_only() {
    let tree = FakeTree::new("coldplug-fail");
    let kernel = tree.kernel();
    let plan = planned(&tree, "blacklist atkbd\n", &kernel);
    // drm, bochs, then virtio fails.
    kernel.script(Syscall::FinitModule, Ok(()));
    kernel.script(Syscall::FinitModule, Ok(()));
    kernel.script(Syscall::FinitModule, Err(Errno(libc::ENOEXEC)));
    kernel.script(Syscall::FinitModule, Ok(()));
    kernel.script(Syscall::FinitModule, Err(Errno(libc::EEXIST)));
    let kernel = LockedKernel::new(kernel);
    let outcomes = run(&plan, &kernel, &mut Recorder::default(), 1);
    let kernel = kernel.into_inner();
    let by_name: HashMap<&str, &Outcome> = names(&plan).into_iter().zip(&outcomes).collect();
    assert!(matches!(by_name["virtio"], Outcome::Failed(why) if why == "Invalid module format"));
    for dependent in ["virtio_ring", "virtio_pci", "virtio_net", "virtio_blk"] {
        assert_eq!(
            *by_name[dependent],
            Outcome::DependencyFailed("virtio".into()),
            "{dependent}"
        );
    }
    assert_eq!(*by_name["usbcore"], Outcome::Loaded(LoadMethod::Finit));
    assert_eq!(*by_name["xhci_hcd"], Outcome::AlreadyLoaded);
    assert_eq!(*by_name["sd_mod"], Outcome::Loaded(LoadMethod::Finit));
    // Nothing was tried for the dependents of virtio.
    assert_eq!(kernel.calls().len(), plan.steps.len() - 4);
}

#[test]
fn parallel_loads_respect_every_dependency() {
    let tree = FakeTree::new("coldplug-parallel");
    let kernel = tree.kernel();
    let plan = planned(&tree, "blacklist atkbd\n", &kernel);
    let shared = LockedKernel::new(kernel);
    for _ in 0..20 {
        let outcomes = run(&plan, &shared, &mut Recorder::default(), 4);
        assert!(outcomes.iter().all(Outcome::is_ok));
    }
    let calls = shared.into_inner().calls();
    assert_eq!(calls.len(), 20 * plan.steps.len());
    for round in calls.chunks(plan.steps.len()) {
        let position = |name: &str| {
            let file = tree.module_path(name);
            round
                .iter()
                .position(|c| matches!(c, Call::FinitModule { file: f, .. } if *f == file))
                .unwrap()
        };
        for step in &plan.steps {
            for &dep in &step.deps {
                assert!(position(&plan.steps[dep].name) < position(&step.name));
            }
        }
    }
}

/// A kernel whose loading of virtio_pci makes the virtio disk appear in a sysfs tree, as
/// the real one does: the devices behind a bus driver appear only once it is loaded.
struct Hotplugging {
    inner: LockedKernel<RecordingKernel>,
    sysfs: PathBuf,
    sys_module: PathBuf,
}

impl Kernel for Hotplugging {
    fn finit_module(&self, file: &File, params: &CStr, flags: u32) -> Result<(), Errno> {
        use std::io::Read;
        let mut text = String::new();
        let _ = (&*file).read_to_string(&mut text);
        let name = text.trim().trim_start_matches("fake ").to_owned();
        if name == "virtio_pci" {
            let dir = self.sysfs.join("devices/pci0000:00/0000:00:04.0/virtio1");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("uevent"), "MODALIAS=virtio:d00000002v00001AF4\n").unwrap();
        }
        let module = self.sys_module.join(&name);
        std::fs::create_dir_all(&module).unwrap();
        std::fs::write(module.join("initstate"), "live\n").unwrap();
        self.inner.finit_module(file, params, flags)
    }
    fn init_module(&self, image: &[u8], params: &CStr) -> Result<(), Errno> {
        self.inner.init_module(image, params)
    }
    fn delete_module(&self, name: &CStr, flags: u32) -> Result<(), Errno> {
        self.inner.delete_module(name, flags)
    }
    fn sys_module(&self) -> &SysModule {
        self.inner.sys_module()
    }
    fn proc_dir(&self) -> &ProcDir {
        self.inner.proc_dir()
    }
}

#[test]
fn devices_that_appear_are_coldplugged_in_the_next_round() {
    let tree = FakeTree::new("coldplug-rounds");
    let sysfs_dir = std::env::temp_dir().join(format!(
        "modkit-coldplug-rounds-sysfs-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&sysfs_dir);
    let pci = sysfs_dir.join("devices/pci0000:00/0000:00:04.0");
    std::fs::create_dir_all(&pci).unwrap();
    std::fs::write(
        pci.join("uevent"),
        "MODALIAS=pci:v00001AF4d00001001sv00001AF4sd00001100bc01sc00i00\n",
    )
    .unwrap();
    let recording = tree.kernel();
    let sys_module = recording.sys_module().root().to_owned();
    let kernel = Hotplugging {
        inner: LockedKernel::new(recording),
        sysfs: sysfs_dir.clone(),
        sys_module,
    };
    let mut ctx = tree.context("");
    let sysfs = modkit::sysfs::Sysfs::new(&sysfs_dir);
    let done = coldplug(
        &mut ctx,
        &kernel,
        &sysfs,
        &mut Recorder::default(),
        &mut Recorder::default(),
        2,
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(&sysfs_dir);
    assert_eq!(
        names(&done.plan),
        ["virtio", "virtio_ring", "virtio_pci", "virtio_blk"]
    );
    assert!(done.outcomes.iter().all(Outcome::is_ok));
    assert_eq!(done.rounds, 2);
    // virtio_blk's dependencies were loaded in the first round: none in its step.
    assert!(done.plan.steps[3].deps.is_empty());
    assert_eq!(done.plan.devices.len(), 2);
    assert!(done.plan.skipped.is_empty(), "{:?}", done.plan.skipped);
    assert_eq!(kernel.inner.into_inner().calls().len(), 4);
}

#[test]
fn install_commands_run_instead_of_loading() {
    let tree = FakeTree::new("coldplug-install");
    let kernel = tree.kernel();
    let plan = planned(
        &tree,
        "blacklist atkbd\ninstall bochs /bin/echo $CMDLINE_OPTS\noptions bochs a=b\n",
        &kernel,
    );
    let bochs = plan.steps.iter().position(|s| s.name == "bochs").unwrap();
    assert_eq!(plan.steps[bochs].deps, Vec::<usize>::new());
    let mut recorder = Recorder::default();
    recorder.exit_statuses.push_back(3);
    let outcomes = run(&plan, &LockedKernel::new(kernel), &mut recorder, 1);
    assert_eq!(
        recorder.commands,
        [("/bin/echo a=b".to_owned(), "bochs".to_owned())]
    );
    assert_eq!(
        outcomes[bochs],
        Outcome::Failed("install command exited with status 3".into())
    );
}

#[test]
fn softdeps_order_without_failing_their_dependents() {
    let tree = FakeTree::new("coldplug-softdep");
    let kernel = tree.kernel();
    let plan = planned(
        &tree,
        "blacklist atkbd\nsoftdep bochs pre: atkbd post: scsi_mod\n",
        &kernel,
    );
    let index = |name: &str| plan.steps.iter().position(|s| s.name == name).unwrap();
    let bochs = &plan.steps[index("bochs")];
    assert_eq!(bochs.soft_deps, [index("atkbd")]);
    assert!(
        plan.steps[index("scsi_mod")]
            .soft_deps
            .contains(&index("bochs"))
    );
    // atkbd is blacklisted as a device's module, but a soft dependency is loaded by name.
    kernel.script(Syscall::FinitModule, Ok(()));
    kernel.script(Syscall::FinitModule, Err(Errno(libc::EINVAL)));
    let outcomes = run(
        &plan,
        &LockedKernel::new(kernel),
        &mut Recorder::default(),
        1,
    );
    assert!(matches!(outcomes[index("atkbd")], Outcome::Failed(_)));
    assert!(outcomes[index("bochs")].is_ok());
}
