// The page file and the kernel's page cache.
//
// The daemon keeps its own page cache, one copy per distinct page (DedupFs.Pages.PageCache).
// Every page it reads or writes through pages.dat would also stay in the kernel's page cache
// of that file, so each hot page would be cached twice and the "cached once" promise of
// cache=shared would cost twice the memory. So the store tells the kernel it no longer needs
// the file's cached pages: after each commit (the pages it flushed are clean, so dropping
// them is cheap and loses nothing) and after every HostCacheDropBytes of reads. Readahead
// still works between two drops; a page the daemon evicted is read from the disk again,
// which is what a cache budget means.
namespace DedupFs.Store;

public sealed partial class Store
{
    private const long HostCacheDropBytes = 32L << 20;
    private long _bytesReadSinceDrop;

    /// <summary>Host-cache drops done so far (a figure for tests and benchmarks).</summary>
    public long HostCacheDrops => Interlocked.Read(ref _hostCacheDrops);

    private long _hostCacheDrops;

    private void NotePageFileRead(int bytes)
    {
        if (!_options.DropHostCache) return;
        if (Interlocked.Add(ref _bytesReadSinceDrop, bytes) < HostCacheDropBytes) return;
        Interlocked.Exchange(ref _bytesReadSinceDrop, 0);
        DropHostCache();
    }

    /// <summary>Asks the kernel to drop its cached pages of pages.dat (clean ones only: dirty pages
    /// are written first by the commit's fdatasync, and the kernel keeps any it cannot drop).</summary>
    internal void DropHostCache()
    {
        if (!_options.DropHostCache) return;
        Interop.Libc.posix_fadvise((int)_pageFile.DangerousGetHandle(), 0, 0, Interop.Libc.POSIX_FADV_DONTNEED);
        Interlocked.Increment(ref _hostCacheDrops);
    }
}
