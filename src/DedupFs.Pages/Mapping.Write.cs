// Changing bytes: write, truncate, punch hole. All three reduce to SetContent(index, bytes):
//
//   all zeros            -> the slot becomes a hole (the zero page is never stored)
//   same bytes as now    -> nothing changes (hash filter, then byte compare)
//   otherwise            -> InstallPage (inline dedup or a new page), point the slot at it,
//                           release the old page; if the old page was shared this is the
//                           break-share: cow_ksm++ and the observers hear of it.
// Partial pages are read-modify-write through a stack buffer. Nothing on this path allocates.
//
// Every path asks the break-share policy about all shared slots of its range first (see
// BreakShare.cs), so a refusal changes nothing.
using System.Runtime.CompilerServices;
using DedupFs.Store;

namespace DedupFs.Pages;

public sealed partial class Mapping
{
    /// <summary>Writes <paramref name="src"/> at <paramref name="offset"/>, extending the length if needed.</summary>
    /// <exception cref="BreakShareRefusedException">the policy refused to break a share; nothing changed.</exception>
    [SkipLocalsInit]
    public void Write(long offset, ReadOnlySpan<byte> src)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        if (src.IsEmpty) return;
        long first = offset >> PageShift, last = (offset + src.Length - 1) >> PageShift;
        Span<byte> page = stackalloc byte[PageSize];
        Span<byte> scratch = stackalloc byte[PageSize];
        using DedupFs.Store.Store.MutationScope gate = _engine.Store.EnterPageMutation();
        ulong locked = LockRange(first, last);
        try
        {
            AskPolicy(first, last, BreakShareReason.Write);
            // Whole pages in the middle go through the batched path; the partial pages at either
            // end are read-modify-written one at a time.
            long end = offset + src.Length;
            long wholeFirst = (offset + PageSize - 1) >> PageShift, wholeEnd = end >> PageShift; // [wholeFirst, wholeEnd)
            for (long idx = first; idx <= last; idx++)
            {
                if (idx == wholeFirst && wholeEnd > wholeFirst)
                {
                    int at = (int)((wholeFirst << PageShift) - offset);
                    WriteWholePages(wholeFirst, src.Slice(at, (int)((wholeEnd - wholeFirst) << PageShift)), scratch);
                    idx = wholeEnd - 1;
                    continue;
                }
                long pageStart = idx << PageShift;
                int inPage = (int)Math.Max(offset - pageStart, 0);
                int srcAt = (int)Math.Max(pageStart - offset, 0);
                int count = (int)Math.Min(PageSize - inPage, end - (pageStart + inPage));
                PageId old = _slots.Get(idx);
                if (old.IsNone) page.Clear();
                else _engine.ReadPage(old, page);
                src.Slice(srcAt, count).CopyTo(page[inPage..]);
                SetContent(idx, page, BreakShareReason.Write, scratch);
            }
            _slots.ExtendLength(offset + src.Length);
        }
        catch (Exception e)
        {
            _engine.OnOperationFailed(e);
            throw;
        }
        finally
        {
            Unlock(locked);
        }
    }

    /// <summary>Sets the length: shrinking zeroes the tail of the new last page and drops the pages beyond.</summary>
    [SkipLocalsInit]
    public void Truncate(long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        Span<byte> page = stackalloc byte[PageSize];
        Span<byte> scratch = stackalloc byte[PageSize];
        using DedupFs.Store.Store.MutationScope gate = _engine.Store.EnterPageMutation();
        ulong locked = LockRange(0, long.MaxValue >> 1);
        try
        {
            if (length < Length)
            {
                long keep = (length + PageSize - 1) >> PageShift;
                if ((length & (PageSize - 1)) != 0)
                {
                    long idx = length >> PageShift;
                    PageId old = _slots.Get(idx);
                    if (!old.IsNone)
                    {
                        AskPolicy(idx, idx, BreakShareReason.Truncate);
                        _engine.ReadPage(old, page);
                        page[(int)(length & (PageSize - 1))..].Clear();
                        SetContent(idx, page, BreakShareReason.Truncate, scratch);
                    }
                }
                DropPages(keep, _slots.LastUsedIndex());
            }
            _slots.Length = length;
        }
        catch (Exception e)
        {
            _engine.OnOperationFailed(e);
            throw;
        }
        finally
        {
            Unlock(locked);
        }
    }

    /// <summary>Zeroes [offset, offset+length) within the file: whole pages become holes, partial pages are
    /// rewritten with zeros. The length does not change (FALLOC_FL_PUNCH_HOLE | KEEP_SIZE; also zero range).</summary>
    [SkipLocalsInit]
    public void PunchHole(long offset, long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        long end = Math.Min(offset + Math.Max(length, 0), Length);
        if (end <= offset) return;
        long first = offset >> PageShift, last = (end - 1) >> PageShift;
        Span<byte> page = stackalloc byte[PageSize];
        Span<byte> scratch = stackalloc byte[PageSize];
        using DedupFs.Store.Store.MutationScope gate = _engine.Store.EnterPageMutation();
        ulong locked = LockRange(first, last);
        try
        {
            AskPolicy(first, last, BreakShareReason.Punch);
            for (long idx = first; idx <= last; idx++)
            {
                long pageStart = idx << PageShift;
                int from = (int)Math.Max(offset - pageStart, 0);
                int to = (int)Math.Min(end - pageStart, PageSize);
                PageId old = _slots.Get(idx);
                if (old.IsNone) continue;
                if (from == 0 && to == PageSize)
                {
                    bool shared = _engine.IsShared(old);
                    _slots.Set(idx, PageId.None);
                    _engine.ReleasePage(old);
                    if (shared) NoteBroken(idx, old, PageId.None, BreakShareReason.Punch);
                    continue;
                }
                _engine.ReadPage(old, page);
                page[from..to].Clear();
                SetContent(idx, page, BreakShareReason.Punch, scratch);
            }
        }
        catch (Exception e)
        {
            _engine.OnOperationFailed(e);
            throw;
        }
        finally
        {
            Unlock(locked);
        }
    }

    /// <summary>fallocate(FALLOC_FL_ZERO_RANGE): zeroes [offset, offset+length) and, unless
    /// <paramref name="keepSize"/>, extends the length to cover it. Zeros are holes here, so this
    /// is a punch plus a length change.</summary>
    public void ZeroRange(long offset, long length, bool keepSize)
    {
        PunchHole(offset, length);
        if (!keepSize && offset + length > Length) Truncate(offset + length);
    }

    // Drops whole pages [first, last] (truncation, deletion): references go, pages do not change.
    private void DropPages(long first, long last)
    {
        for (long idx = first; idx <= last; idx++)
        {
            PageId old = _slots.Get(idx);
            if (old.IsNone) continue;
            _slots.Set(idx, PageId.None);
            _engine.ReleasePage(old);
        }
    }

    // Points slot idx at a page holding content (or a hole). Caller holds the gate and idx's stripe.
    private void SetContent(long idx, ReadOnlySpan<byte> content, BreakShareReason reason, Span<byte> scratch)
    {
        PageId old = _slots.Get(idx);
        if (PageContent.IsZero(content))
        {
            if (old.IsNone) return;
            Interlocked.Increment(ref _engine.Counters.ZeroPagesSkipped);
            bool wasShared = _engine.IsShared(old);
            _slots.Set(idx, PageId.None);
            _engine.ReleasePage(old);
            if (wasShared) NoteBroken(idx, old, PageId.None, reason);
            return;
        }
        ulong hash = PageContent.Hash(content);
        if (!old.IsNone && _engine.Store.GetRecord(old).Hash == hash && _engine.ContentEquals(old, content, scratch))
            return; // rewriting the same bytes changes nothing
        bool shared = _engine.IsShared(old);
        PageId now = _engine.InstallPage(content, hash, _engine.Options.InlineDedup, scratch);
        _slots.Set(idx, now);
        if (!old.IsNone) _engine.ReleasePage(old);
        if (shared) NoteBroken(idx, old, now, reason);
    }
}
