// Reading a byte range: for each page, the slot under its stripe lock, then the page cache
// (hit: a 4 KiB copy, no allocation) or the Store (miss: pread + CRC32C check, then cached).
// Holes read as zeros. A damaged page throws PageChecksumException (EIO) from here.
using System.Runtime.CompilerServices;
using DedupFs.Store;

namespace DedupFs.Pages;

public sealed partial class Mapping
{
    /// <summary>Reads up to <paramref name="dest"/>.Length bytes at <paramref name="offset"/>; returns the count (short at end of file).</summary>
    [SkipLocalsInit]
    public int Read(long offset, Span<byte> dest)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        long length = Length;
        if (offset >= length || dest.IsEmpty) return 0;
        int n = (int)Math.Min(dest.Length, length - offset);
        Span<byte> scratch = stackalloc byte[PageSize];
        int done = 0;
        while (done < n)
        {
            long pos = offset + done;
            long idx = pos >> PageShift;
            int inPage = (int)(pos & (PageSize - 1));
            int count = Math.Min(PageSize - inPage, n - done);
            Span<byte> target = dest.Slice(done, count);
            lock (StripeOf(idx))
            {
                PageId id = _slots.Get(idx);
                if (id.IsNone) target.Clear();
                else if (count == PageSize) _engine.ReadPage(id, target);
                else
                {
                    _engine.ReadPage(id, scratch);
                    scratch.Slice(inPage, count).CopyTo(target);
                }
            }
            done += count;
        }
        return n;
    }
}
