// A directory of 100 000 entries, created, listed and emptied through the mount between two
// commits: every step must stay linear (the store's pending overlay is ordered, and a listing
// is one snapshot per open directory). No timing is asserted; the test just has to finish.
using DedupFs.FileSystem.Tests.Support;
using static DedupFs.Tests.Support.Posix;

namespace DedupFs.FileSystem.Tests;

public sealed class LargeDirectoryTests : IDisposable
{
    private readonly DedupMount _m = new(CacheMode.Shared);

    public void Dispose() => _m.Dispose();

    [Fact]
    public void A_100k_entry_directory_is_listed_completely()
    {
        const int Count = 100_000;
        Assert.Equal(0, Mkdir(_m["big"]));
        for (int i = 0; i < Count; i++)
        {
            int rc = Mknod(_m[$"big/f{i:D6}"], 0x8000 | 0x1A4);
            if (rc != 0) Assert.Fail($"mknod {i}: errno {rc}");
        }
        var seen = new HashSet<string>();
        foreach (string path in Directory.EnumerateFileSystemEntries(_m["big"]))
            Assert.True(seen.Add(Path.GetFileName(path)), $"{path} listed twice");
        Assert.Equal(Count, seen.Count);
    }

    [Fact]
    public void Listing_offsets_stay_stable_while_the_directory_changes()
    {
        Assert.Equal(0, Mkdir(_m["d"]));
        for (int i = 0; i < 3000; i++) File.WriteAllText(_m[$"d/e{i:D4}"], "");
        var seen = new List<string>();
        int n = 0;
        foreach (string path in Directory.EnumerateFileSystemEntries(_m["d"]))
        {
            seen.Add(Path.GetFileName(path));
            if (++n == 100)
            {
                // Entries removed and added behind the reader do not shift its position.
                for (int i = 0; i < 50; i++) File.Delete(_m[$"d/e{i:D4}"]);
                for (int i = 0; i < 50; i++) File.WriteAllText(_m[$"d/a{i:D4}"], "");
            }
        }
        Assert.Equal(seen.Count, seen.Distinct().Count());
        for (int i = 50; i < 3000; i++) Assert.Contains($"e{i:D4}", seen);
    }
}
