using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;

namespace DedupFs.Store.Tests;

/// <summary>pages.dat stays out of the kernel's page cache: the daemon caches each page once.</summary>
public sealed partial class HostCacheTests
{
    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int mincore(void* addr, nuint length, byte* vec);

    // Pages of the file the kernel has cached, whether or not anyone maps them (mincore on a
    // fresh shared mapping reports the file's page-cache residency).
    private static unsafe int ResidentPages(string path)
    {
        long length = new FileInfo(path).Length;
        using var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        using var view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        try
        {
            int pages = (int)((length + 4095) / 4096);
            var vec = new byte[pages];
            fixed (byte* v = vec)
            {
                if (mincore(p + view.PointerOffset, (nuint)length, v) != 0) throw new IOException($"mincore: errno {Marshal.GetLastPInvokeError()}");
            }
            return vec.Count(b => (b & 1) != 0);
        }
        finally
        {
            view.SafeMemoryMappedViewHandle.ReleasePointer();
        }
    }

    private static PageId[] WritePages(Store store, int count)
    {
        var ids = new PageId[count];
        using (store.EnterMutation())
        {
            for (int i = 0; i < count; i++) ids[i] = store.AllocatePage(TestOptions.Page(i + 1), (ulong)i);
        }
        return ids;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_commit_leaves_no_page_of_the_file_in_the_kernel_cache_unless_asked_to(bool drop)
    {
        using var dir = new TempDir();
        var options = TestOptions.Manual();
        using Store store = Store.Open(dir.Path, new StoreOptions
        {
            CommitInterval = options.CommitInterval, CommitAfterPages = options.CommitAfterPages,
            MetadataMapSize = options.MetadataMapSize, DropHostCache = drop,
        });
        WritePages(store, 256);
        store.Commit();
        int resident = ResidentPages(Path.Combine(dir.Path, "pages.dat"));
        if (drop) Assert.Equal(0, resident);
        else Assert.True(resident > 128, $"{resident} of 256 pages resident without the drop");
    }

    [Fact]
    public void Reads_past_the_threshold_drop_the_cache_and_still_read_right()
    {
        using var dir = new TempDir();
        using Store store = Store.Open(dir.Path, TestOptions.Manual());
        PageId[] ids = WritePages(store, 64);
        store.Commit();
        long before = store.HostCacheDrops;
        var buf = new byte[4096];
        // 32 MiB of reads is 8192 pages: the 64 pages 128 times over, the drop comes with the last read.
        for (int round = 0; round < 128; round++)
        {
            for (int i = 0; i < ids.Length; i++)
            {
                store.ReadPage(ids[i], buf);
                if (round == 0) Assert.Equal(TestOptions.Page(i + 1), buf);
            }
            if (round == 0) Assert.Equal(64, ResidentPages(Path.Combine(dir.Path, "pages.dat")));
        }
        Assert.Equal(before + 1, store.HostCacheDrops);
        Assert.Equal(0, ResidentPages(Path.Combine(dir.Path, "pages.dat")));
    }
}
