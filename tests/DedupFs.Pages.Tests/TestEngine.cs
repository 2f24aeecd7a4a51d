// An engine over a store in a fresh temporary directory; reopen and crash helpers.
using DedupFs.Store;

namespace DedupFs.Pages.Tests;

internal sealed class TestEngine : IDisposable
{
    public string Dir { get; } = Path.Combine(Path.GetTempPath(), "dedupfs-pages-" + Guid.NewGuid().ToString("N"));
    public PageEngine Engine { get; private set; }
    public List<string> Log { get; } = [];
    private readonly PageEngineOptions _options;

    public TestEngine(PageEngineOptions? options = null)
    {
        _options = options ?? new PageEngineOptions { CacheBytes = 1 << 20 };
        Engine = Open();
    }

    public StoreOptions StoreOptions => new()
    {
        CommitInterval = null,
        CommitAfterPages = 0,
        MetadataMapSize = 1L << 30,
        Log = line => { lock (Log) Log.Add(line); },
    };

    private PageEngine Open() => PageEngine.Open(Dir, StoreOptions, _options);

    /// <summary>Clean close (commit) and open again.</summary>
    public void Reopen()
    {
        Engine.Dispose();
        Engine = Open();
    }

    /// <summary>Close without committing: the disk as a crash leaves it; then open again.</summary>
    public void CrashAndReopen()
    {
        Engine.Store.DisposeWithoutCommit();
        Engine.Cache.Dispose();
        Engine = Open();
    }

    public void Dispose()
    {
        Engine.Dispose();
        try { Directory.Delete(Dir, true); } catch (DirectoryNotFoundException) { }
    }

    public static byte[] Bytes(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    public static byte[] ReadAll(Mapping m)
    {
        var b = new byte[m.Length];
        int n = m.Read(0, b);
        Assert.Equal(b.Length, n);
        return b;
    }
}
