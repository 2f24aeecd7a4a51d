// The break-share callback [the write-protect fault of a KSM page; the mapping callback of
// the 2020 "KSM for file-backed pages" proposal].
//
// Any path that is about to change a slot whose page is shared (refcount > 1) first asks the
// mapping's policy, for every such slot in the range, before anything changes:
//   write, truncate inside a page, punch hole / zero range, clone onto an existing range.
// The default policy answers CopyOnWrite: the slot gets a new page for this mapping only,
// every other mapping keeps the old page unchanged (invariant 2), and cow_ksm counts it.
// A policy may answer Refuse: the whole operation fails before any slot changes, with the
// errno the policy chose (e.g. EPERM or ETXTBSY for "exclusive write access" schemes).
//
// After each break, observers hear about it (the mapping's event and the engine's): for
// statistics, for invalidating the kernel's cache of the file, for tracing. Observers run
// under the mapping's stripe locks and must not call back into the mapping.
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

/// <summary>The policy's answer.</summary>
public enum BreakShareDecision
{
    /// <summary>Give this mapping its own copy (the default).</summary>
    CopyOnWrite,
    /// <summary>Fail the operation before anything changes.</summary>
    Refuse,
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
public sealed class BreakShareRefusedException(BreakShareEvent e, int errno)
    : StoreException($"inode {e.Mapping.Inode} page {e.Index}: break-share of shared {e.SharedPage} refused ({e.Reason})", errno)
{
    /// <summary>The slot that was refused.</summary>
    public BreakShareEvent Event { get; } = e;
}
