// Content pages on disk: allocation, reference counting and checked reads.
//
// A page is written once, to a slot no durable metadata reaches (a free slot or a new one at
// the end of pages.dat), and never rewritten while it lives: a write to a file always makes a
// new page. That is what makes the store crash-safe without a journal for page data.
//
// Reads verify CRC32C on every read from disk; a mismatch is logged with the page and slot
// and thrown as PageChecksumException (EIO), never returned as bytes.
using System.Runtime.CompilerServices;

namespace DedupFs.Store;

public sealed partial class Store
{
    private long _pagesSinceCommit;
    private volatile bool _pageFileDirty;

    /// <summary>Slots ever allocated (the page file holds at least this many).</summary>
    public long HighWater => _pages.HighWater;

    /// <summary>Writes a new page with refcount 1 and returns its id. The caller holds a mutation scope.</summary>
    /// <param name="data">exactly 4096 bytes</param>
    /// <param name="hash">xxHash64 of <paramref name="data"/> (the content index key)</param>
    public PageId AllocatePage(ReadOnlySpan<byte> data, ulong hash)
    {
        if (data.Length != PageSize) ThrowBadPageLength();
        uint crc = Crc32C.Compute(data);
        long slot = _pages.Allocate();
        try
        {
            RandomAccess.Write(_pageFile, data, slot * PageSize);
        }
        catch (IOException e)
        {
            _pages.FreeAfterCommit(slot); // never reached by metadata: safe to recycle at the next commit
            throw WriteFailed(e);
        }
        ref PageRecord rec = ref _pages[slot];
        rec.Crc32C = crc;
        rec.Hash = hash;
        Volatile.Write(ref rec.RefCount, 1);
        _pages.MarkDirty(slot);
        _pageFileDirty = true;
        NotePageWork();
        return PageId.FromSlot(slot);
    }

    /// <summary>Writes n new pages (n = <paramref name="ids"/>.Length, <paramref name="data"/> = n x 4096 bytes)
    /// with refcount 1 each. Slots that turn out consecutive are written with one pwrite per run. The caller
    /// holds a mutation scope.</summary>
    [System.Runtime.CompilerServices.SkipLocalsInit]
    public void AllocatePages(ReadOnlySpan<byte> data, ReadOnlySpan<ulong> hashes, Span<PageId> ids)
    {
        int n = ids.Length;
        if (data.Length != n * PageSize || hashes.Length != n) throw new ArgumentException("data must be ids.Length pages, with one hash each");
        if (n == 0) return;
        Span<long> slots = n <= 64 ? stackalloc long[n] : new long[n];
        _pages.AllocateMany(slots);
        try
        {
            for (int start = 0; start < n;)
            {
                int end = start + 1;
                while (end < n && slots[end] == slots[end - 1] + 1) end++;
                RandomAccess.Write(_pageFile, data[(start * PageSize)..(end * PageSize)], slots[start] * PageSize);
                start = end;
            }
        }
        catch (IOException e)
        {
            foreach (long slot in slots) _pages.FreeAfterCommit(slot); // no metadata reaches them
            throw WriteFailed(e);
        }
        for (int k = 0; k < n; k++)
        {
            long slot = slots[k];
            ref PageRecord rec = ref _pages[slot];
            rec.Crc32C = Crc32C.Compute(data.Slice(k * PageSize, PageSize));
            rec.Hash = hashes[k];
            Volatile.Write(ref rec.RefCount, 1);
            _pages.MarkDirty(slot);
            ids[k] = PageId.FromSlot(slot);
        }
        _pageFileDirty = true;
        NotePageWork(n);
    }

    /// <summary>Reads page <paramref name="page"/> from disk into <paramref name="dest"/> (4096 bytes), verifying its checksum.</summary>
    /// <exception cref="PageChecksumException">the bytes on disk do not match the stored checksum.</exception>
    public void ReadPage(PageId page, Span<byte> dest)
    {
        if (dest.Length != PageSize) ThrowBadPageLength();
        long slot = page.Slot;
        if (page.IsNone || slot >= _pages.HighWater) ThrowNoSuchPage(page);
        int n = RandomAccess.Read(_pageFile, dest, slot * PageSize);
        if (n < PageSize) dest[n..].Clear();
        NotePageFileRead(PageSize);
        uint expected = _pages[slot].Crc32C;
        uint actual = Crc32C.Compute(dest);
        if (actual != expected) ThrowChecksum(page, expected, actual);
    }

    /// <summary>Reads a page's bytes without verifying its checksum, for byte compares only: a compare
    /// that matches new bytes whose xxHash64 equals the page's recorded hash proves the page intact
    /// (short of a 64-bit collision), and one that fails shares nothing, so the CRC is not needed,
    /// and the page is not pulled into the cache by a lookup.</summary>
    public void ReadPageForCompare(PageId page, Span<byte> dest)
    {
        if (dest.Length != PageSize) ThrowBadPageLength();
        if (page.IsNone || page.Slot >= _pages.HighWater) ThrowNoSuchPage(page);
        int n = RandomAccess.Read(_pageFile, dest, page.Slot * PageSize);
        if (n < PageSize) dest[n..].Clear();
        NotePageFileRead(PageSize);
    }

    /// <summary><see cref="ReadPageForCompare"/> for a run of consecutive slots starting at <paramref name="first"/>,
    /// in one pread: inline dedup of a copied file finds its twins in runs.</summary>
    public void ReadPagesForCompare(PageId first, Span<byte> dest)
    {
        int pages = dest.Length / PageSize;
        if (dest.Length != pages * PageSize || pages == 0) ThrowBadPageLength();
        if (first.IsNone || first.Slot + pages > _pages.HighWater) ThrowNoSuchPage(first);
        int n = RandomAccess.Read(_pageFile, dest, first.Slot * PageSize);
        if (n < dest.Length) dest[n..].Clear();
        NotePageFileRead(dest.Length);
    }

    /// <summary>Adds a reference to every page in <paramref name="ids"/> (0 = hole, skipped), which the caller
    /// already references (clone). Returns how many pages became shared (refcount 1 -> 2).</summary>
    public int AddRefs(ReadOnlySpan<uint> ids)
    {
        int becameShared = 0;
        long lastChunk = -1;
        foreach (uint id in ids)
        {
            if (id == 0) continue;
            long slot = id - 1L;
            if (Interlocked.Increment(ref _pages[slot].RefCount) == 2) becameShared++;
            long chunk = slot / StoreFormat.PagesPerChunk;
            if (chunk != lastChunk)   // clones are mostly runs of neighbouring pages
            {
                _pages.MarkDirty(slot);
                lastChunk = chunk;
            }
        }
        return becameShared;
    }

    /// <summary>Hint for batched lookups: starts loading <paramref name="page"/>'s record into the CPU cache.
    /// Does nothing for None or an id beyond the page file.</summary>
    public void PrefetchRecord(PageId page) => _pages.Prefetch(page.Slot);

    /// <summary>The record (refcount, checksum, hash) of <paramref name="page"/>.</summary>
    public PageRecord GetRecord(PageId page) => _pages[page.Slot];

    /// <summary>The refcount of <paramref name="page"/>.</summary>
    public uint RefCount(PageId page) => Volatile.Read(ref _pages[page.Slot].RefCount);

    /// <summary>Adds a reference to a page the caller already holds a reference to (clone).</summary>
    public uint AddRef(PageId page)
    {
        uint n = Interlocked.Increment(ref _pages[page.Slot].RefCount);
        _pages.MarkDirty(page.Slot);
        return n;
    }

    /// <summary>Adds a reference unless the page is already free (content-index candidates). Returns the new count, or 0.</summary>
    public uint TryAddRef(PageId page)
    {
        ref uint rc = ref _pages[page.Slot].RefCount;
        while (true)
        {
            uint cur = Volatile.Read(ref rc);
            if (cur == 0) return 0;
            if (Interlocked.CompareExchange(ref rc, cur + 1, cur) == cur)
            {
                _pages.MarkDirty(page.Slot);
                return cur + 1;
            }
        }
    }

    /// <summary><see cref="TryAddRef"/> for an id that is only a guess (inline dedup's sequential prediction):
    /// 0 for None, for an id beyond the page file and for a free page.</summary>
    public uint TryAddRefGuess(PageId page) => page.IsNone || page.Slot >= _pages.HighWater ? 0 : TryAddRef(page);

    /// <summary>Drops a reference; at 0 the slot is freed after the next durable commit. Returns the new count.</summary>
    public uint Release(PageId page)
    {
        uint n = Interlocked.Decrement(ref _pages[page.Slot].RefCount);
        if (n == uint.MaxValue) throw new InvalidOperationException($"{page}: refcount underflow");
        _pages.MarkDirty(page.Slot);
        if (n == 0)
        {
            _pages.FreeAfterCommit(page.Slot);
            NotePageWork();
        }
        return n;
    }

    /// <summary>Calls <paramref name="visit"/> for every live page (refcount &gt; 0).</summary>
    public void ForEachLivePage(Action<PageId, PageRecord> visit)
    {
        long hw = _pages.HighWater;
        for (long s = 0; s < hw; s++)
        {
            PageRecord rec = _pages[s];
            if (rec.RefCount != 0) visit(PageId.FromSlot(s), rec);
        }
    }

    /// <summary>Slots free now / waiting for a durable commit.</summary>
    public (int Free, int Pending) SlotCounts => (_pages.FreeCount, _pages.PendingCount);

    private PageWriteException WriteFailed(IOException e)
    {
        // .NET reports ENOSPC as an IOException whose HResult carries the errno on Unix
        // (or the ERROR_DISK_FULL / ERROR_HANDLE_DISK_FULL codes); anything else is EIO.
        int errno = e.HResult is 28 or unchecked((int)0x80070070) or unchecked((int)0x80070027) ? 28 : StoreException.Errno_EIO;
        Log($"dedupfs store {Directory}: writing page data failed: {e.Message}");
        return new PageWriteException($"{Directory}: writing page data failed: {e.Message}", errno, e);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowBadPageLength() => throw new ArgumentException($"a page is exactly {PageSize} bytes");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowNoSuchPage(PageId page) => throw new StoreException($"{page}: no such page");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowChecksum(PageId page, uint expected, uint actual)
    {
        var e = new PageChecksumException(page, expected, actual);
        Log($"dedupfs store {Directory}: I/O error: {e.Message}");
        throw e;
    }
}
