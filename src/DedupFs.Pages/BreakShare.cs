// The break-share callback [the write-protect fault of a KSM page; the mapping callback of
// the 2020 "KSM for file-backed pages" proposal].
//
// Any path that is about to change a slot whose page is shared (refcount > 1) first asks the
// mapping's policy, for every such slot in the range, before anything changes:
//   write, truncate inside a page, punch hole / zero range, clone onto an existing range.
// The policy answers one of three decisions:
//
//   CopyOnWrite (the default, also when there is no policy): the slot gets a new page for this
//     mapping only, every other mapping keeps the old page unchanged (invariant 2), and
//     cow_ksm counts it.
//   Refuse: the whole operation fails before any slot changes, with the errno the mapping
//     chose (RefusedErrno: e.g. EPERM or ETXTBSY for "exclusive write access" schemes).
//   RedirectTo(target): "not here: do it there". The operation is not applied to this mapping
//     at all (like a refusal, nothing changed) and fails with BreakShareRedirectedException,
//     which names the target mapping; the caller performs the same operation, at the same
//     offsets, on the target. This is the per-owner overlay of the proposal: a base file
//     shared by many owners (an image layer) keeps its pages, and each owner's writes go to
//     its own mapping, typically a clone of the base made on first write (copy-up), where
//     copy-on-write then breaks the share for that owner only.
//
// Why Redirect is a "retry there" and not the Pages layer writing into the target itself, or
// writing the shared page for every sharer: a page never changes while it is shared (invariant
// 3), so the write cannot land in the shared page; and a write silently applied to another
// file would make this file fail to read back what was just written to it, which only the
// caller (the filesystem, which owns the overlay and routes reads to it) can make right. The
// exception derives from BreakShareRefusedException, so a caller that does not follow
// redirects treats it as a refusal (RefusedErrno) and can never lose the write silently.
// The target must be another mapping of the same engine (ArgumentException otherwise, and
// nothing changes); the caller bounds how many redirects it follows.
//
// When a range holds several shared slots, the first decision other than CopyOnWrite (in
// index order) decides the whole operation.
//
// After each break, observers hear about it (the mapping's event and the engine's): for
// statistics, for invalidating the kernel's cache of the file, for tracing. Observers run
// under the mapping's stripe locks and must not call back into the mapping. A refused or
// redirected operation breaks nothing, so observers hear nothing.
//
// Dropping a whole-page reference by truncation or deletion does not change the page and is
// not a break (KSM: "Truncate/punch on one file drops only its rmap entry"); nor is unmerge,
// which exists to make private copies.
using DedupFs.Store;

namespace DedupFs.Pages;

/// <summary>What is about to change a shared slot.</summary>
public enum BreakShareReason
{
    /// <summary>write(2), copy_file_range or mmap writeback into the page.</summary>
    Write,
    /// <summary>Truncation to an offset inside the page (the tail is zeroed).</summary>
    Truncate,
    /// <summary>Punch hole or zero range over (part of) the page.</summary>
    Punch,
    /// <summary>A clone whose destination range covers the slot.</summary>
    CloneDestination,
}

/// <summary>What a break-share policy decides for a shared slot.</summary>
public enum BreakShareAction
{
    /// <summary>Give this mapping its own copy (the default).</summary>
    CopyOnWrite,
    /// <summary>Fail the operation before anything changes.</summary>
    Refuse,
    /// <summary>Apply the operation to <see cref="BreakShareDecision.Target"/> instead; this mapping does not change.</summary>
    Redirect,
}

/// <summary>The policy's answer: <see cref="CopyOnWrite"/>, <see cref="Refuse"/> or <see cref="RedirectTo"/>.</summary>
public readonly record struct BreakShareDecision
{
    private BreakShareDecision(BreakShareAction action, Mapping? target)
    {
        Action = action;
        Target = target;
    }

    /// <summary>What to do.</summary>
    public BreakShareAction Action { get; }

    /// <summary>For <see cref="BreakShareAction.Redirect"/>: the mapping the caller should apply the operation to.</summary>
    public Mapping? Target { get; }

    /// <summary>Give this mapping its own copy (the default).</summary>
    public static BreakShareDecision CopyOnWrite => default;

    /// <summary>Fail the operation before anything changes (errno: the mapping's RefusedErrno).</summary>
    public static BreakShareDecision Refuse { get; } = new(BreakShareAction.Refuse, null);

    /// <summary>Leave this mapping untouched and have the caller apply the operation to <paramref name="target"/>,
    /// another mapping of the same engine (see <see cref="BreakShareRedirectedException"/>).</summary>
    public static BreakShareDecision RedirectTo(Mapping target) =>
        new(BreakShareAction.Redirect, target ?? throw new ArgumentNullException(nameof(target)));
}

/// <summary>A shared slot about to change, or one that just changed.</summary>
/// <param name="Mapping">the mapping whose slot changes</param>
/// <param name="Index">page index in the mapping</param>
/// <param name="SharedPage">the shared page the slot pointed at</param>
/// <param name="NewPage">the page the slot points at now (None while asking the policy, or for a hole)</param>
/// <param name="Reason">the path</param>
public readonly record struct BreakShareEvent(Mapping Mapping, long Index, PageId SharedPage, PageId NewPage, BreakShareReason Reason);

/// <summary>Decides what happens to a shared slot about to change.</summary>
public delegate BreakShareDecision BreakSharePolicy(in BreakShareEvent e);

/// <summary>Hears about a shared slot after it changed.</summary>
public delegate void BreakShareObserver(in BreakShareEvent e);

/// <summary>A break-share policy refused the operation; nothing changed.</summary>
public class BreakShareRefusedException : StoreException
{
    /// <summary>A refusal of the break at <paramref name="e"/>.</summary>
    public BreakShareRefusedException(BreakShareEvent e, int errno)
        : this(e, errno, $"inode {e.Mapping.Inode} page {e.Index}: break-share of shared {e.SharedPage} refused ({e.Reason})") { }

    private protected BreakShareRefusedException(BreakShareEvent e, int errno, string message) : base(message, errno) => Event = e;

    /// <summary>The slot that was refused.</summary>
    public BreakShareEvent Event { get; }
}

/// <summary>A break-share policy redirected the operation to <see cref="Target"/>; nothing changed here.
/// Apply the same operation, at the same offsets, to <see cref="Target"/>. A caller that does not follow
/// redirects sees a refusal (this derives from <see cref="BreakShareRefusedException"/>, with the mapping's RefusedErrno).</summary>
public sealed class BreakShareRedirectedException(BreakShareEvent e, int errno, Mapping target)
    : BreakShareRefusedException(e, errno, $"inode {e.Mapping.Inode} page {e.Index}: break-share of shared {e.SharedPage} redirected to inode {target.Inode} ({e.Reason})")
{
    /// <summary>The mapping the operation belongs to instead.</summary>
    public Mapping Target { get; } = target;
}
