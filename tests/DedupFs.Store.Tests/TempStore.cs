// A store in a fresh temporary directory, deleted on dispose.
namespace DedupFs.Store.Tests;

internal sealed class TempDir : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "dedupfs-test-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (DirectoryNotFoundException) { }
    }
}

internal static class TestOptions
{
    // No background commits: tests decide when a sync point happens.
    public static StoreOptions Manual(List<string>? log = null) => new()
    {
        CommitInterval = null,
        CommitAfterPages = 0,
        MetadataMapSize = 1L << 30,
        Log = line => { lock (log ?? []) log?.Add(line); },
    };

    public static byte[] Page(int seed)
    {
        var page = new byte[Store.PageSize];
        new Random(seed).NextBytes(page);
        return page;
    }
}
