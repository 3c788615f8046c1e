//! The PF's namespaces made visible to its VFs' secondary controllers (NVMe Base Spec 2.0 §8.26
//! "Virtualization Enhancements": a secondary controller sees the namespaces attached to it; the
//! Namespace Attachment command attaches a namespace to the controllers in its controller list).
//!
//! Once the VFs are online, for every active namespace of the PF (Identify CNS 02h): Identify
//! Namespace (CNS 00h) for its size and block size, and the list of controllers it is attached to
//! (CNS 12h). The VF controllers not in that list get a Namespace Attachment (Select 0h, Controller
//! Attach) naming them; the list is read again and must now name them. A namespace that is not
//! shareable (NMIC bit 0 clear) can belong to one controller only and is not attached.
//!
//! QEMU 10.0's nvme attaches a shared namespace to a controller when that controller is enabled
//! (CC.EN 0 -> 1), so before a guest enables its VF the VF's controller is not in the list; and it
//! answers a Namespace Attachment naming another controller with "Namespace Already Attached"
//! when the *issuing* controller (the PF) has the namespace. That answer with the VFs still
//! unlisted is logged as a warning, not an error: the VFs' drivers find the namespace once they
//! enable their controllers (`docs/sriov.md`).

use super::controller::{Controller, NvmeError};
use super::pf::OnlineVf;
use super::regs::PAGE;
use alloc::string::String;
use alloc::vec::Vec;
use conduit_nvme::{
    Attach, Attachment, Cns, Command, ControllerList, IdentifyNamespace, NamespaceList, Status,
    judge_attachment,
};
use conduit_pci::Bdf;
use core::fmt;
use log::{info, warn};

/// Why a namespace could not be shared with the VFs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareError {
    /// An Identify or the Namespace Attachment did not complete, or returned garbage.
    Command(NvmeError),
    /// The PF has no active namespace: the VFs would see no storage.
    NoNamespaces,
    /// NMIC bit 0 is clear: the namespace can be attached to one controller only.
    Private { nsid: u32, attached: Vec<u16> },
    /// Namespace Attachment completed with an error status.
    AttachRefused {
        nsid: u32,
        controllers: Vec<u16>,
        status: Status,
    },
    /// After Namespace Attachment succeeded, the namespace's controller list still lacks a VF's
    /// controller.
    StillDetached { nsid: u32, scid: u16 },
}

impl From<NvmeError> for ShareError {
    fn from(e: NvmeError) -> Self {
        Self::Command(e)
    }
}

impl fmt::Display for ShareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Command(e) => write!(f, "{e}"),
            Self::NoNamespaces => write!(f, "the PF has no active namespace"),
            Self::Private { nsid, attached } => write!(
                f,
                "namespace {nsid} is private (NMIC bit 0 clear) and attached to {}: it cannot \
                 be attached to the VFs' controllers too",
                ids(attached)
            ),
            Self::AttachRefused {
                nsid,
                controllers,
                status,
            } => write!(
                f,
                "Namespace Attachment of namespace {nsid} to controller(s) {} failed: NVMe \
                 status {status}",
                ids(controllers)
            ),
            Self::StillDetached { nsid, scid } => write!(
                f,
                "namespace {nsid} still does not list controller {scid:#x} after Namespace \
                 Attachment"
            ),
        }
    }
}

/// `0x0, 0x1` (or `none`).
fn ids(list: &[u16]) -> String {
    if list.is_empty() {
        return String::from("none");
    }
    let all: Vec<String> = list.iter().map(|i| alloc::format!("{i:#x}")).collect();
    all.join(", ")
}

/// One namespace as the VFs now share it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shared {
    pub nsid: u32,
    pub namespace: IdentifyNamespace,
    /// The controllers it is attached to afterwards.
    pub attached: Vec<u16>,
}

fn attached_to(c: &mut Controller, nsid: u32) -> Result<ControllerList, NvmeError> {
    let what = "Identify Namespace Attached Controller List (CNS 12h)";
    let data = c.identify_ns(Cns::AttachedControllers, nsid, 0, what)?;
    ControllerList::parse(&data[..]).map_err(|error| NvmeError::Namespace { what, error })
}

/// Attaches every active namespace of the PF behind `c` to the controllers of `vfs` (see the
/// module docs).
pub fn share(c: &mut Controller, vfs: &[OnlineVf]) -> Result<Vec<Shared>, ShareError> {
    let pf = c.bdf;
    let what = "Identify Active Namespace ID list (CNS 02h)";
    let data = c.identify_ns(Cns::ActiveNamespaces, 0, 0, what)?;
    let active =
        NamespaceList::parse(&data[..]).map_err(|error| NvmeError::Namespace { what, error })?;
    if active.ids().is_empty() {
        return Err(ShareError::NoNamespaces);
    }
    let mut out = Vec::new();
    for &nsid in active.ids() {
        out.push(share_one(c, pf, nsid, vfs)?);
    }
    Ok(out)
}

fn share_one(
    c: &mut Controller,
    pf: Bdf,
    nsid: u32,
    vfs: &[OnlineVf],
) -> Result<Shared, ShareError> {
    let what = "Identify Namespace (CNS 00h)";
    let data = c.identify_ns(Cns::Namespace, nsid, 0, what)?;
    let namespace = IdentifyNamespace::parse(&data[..])
        .map_err(|error| NvmeError::Namespace { what, error })?;
    let before = attached_to(c, nsid)?;
    info!(
        "nvme: {pf}: namespace {nsid}: {} blocks of {} bytes ({} MiB), {} (NMIC {:#x}), attached \
         to controller(s) {}",
        namespace.nsze,
        namespace.block_size,
        namespace.bytes() >> 20,
        if namespace.shareable() {
            "shareable"
        } else {
            "private"
        },
        namespace.nmic,
        ids(before.ids())
    );
    let missing: Vec<u16> = vfs
        .iter()
        .map(|v| v.scid)
        .filter(|s| !before.contains(*s))
        .collect();
    if missing.is_empty() {
        info!("nvme: {pf}: namespace {nsid} is attached to every online VF's controller already");
        return Ok(Shared {
            nsid,
            namespace,
            attached: before.ids().to_vec(),
        });
    }
    if !namespace.shareable() {
        return Err(ShareError::Private {
            nsid,
            attached: before.ids().to_vec(),
        });
    }
    let what = "Namespace Attachment (Controller Attach)";
    let list =
        ControllerList::new(&missing).map_err(|error| NvmeError::Namespace { what, error })?;
    let mut bytes = [0u8; PAGE as usize];
    bytes.copy_from_slice(&list.encode());
    let done = c.admin_with_data(
        &bytes,
        |prp1| Command::namespace_attachment(Attach::Attach, nsid, prp1),
        what,
    )?;
    let status = done.status();
    let after = attached_to(c, nsid)?;
    match judge_attachment(status, &missing, &after) {
        Attachment::Listed => info!(
            "nvme: {pf}: namespace {nsid}: Namespace Attachment to controller(s) {} completed \
             with NVMe status {status}; now attached to controller(s) {}",
            ids(&missing),
            ids(after.ids())
        ),
        // The controller judged "already attached" by another controller than the one named
        // (QEMU 10.0's nvme checks the issuing controller); its controllers attach a shared
        // namespace when they are enabled: each VF's driver finds it in its Active Namespace
        // ID list after CC.EN = 1.
        Attachment::ClaimedAttached { .. } => {
            let unlisted: Vec<u16> = missing
                .iter()
                .copied()
                .filter(|s| !after.contains(*s))
                .collect();
            warn!(
                "nvme: {pf}: namespace {nsid}: Namespace Attachment to controller(s) {} answered \
                 NVMe status {status} although its controller list names {}: the namespace is \
                 shareable and attached to a controller when that controller is enabled; the \
                 VFs' drivers find it after enabling their controllers",
                ids(&unlisted),
                ids(after.ids())
            );
        }
        Attachment::StillDetached { unlisted } => {
            return Err(ShareError::StillDetached {
                nsid,
                scid: unlisted,
            });
        }
        Attachment::Refused(status) => {
            return Err(ShareError::AttachRefused {
                nsid,
                controllers: missing,
                status,
            });
        }
    }
    Ok(Shared {
        nsid,
        namespace,
        attached: after.ids().to_vec(),
    })
}
