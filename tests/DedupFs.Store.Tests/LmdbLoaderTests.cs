using DedupFs.Store.Interop;

namespace DedupFs.Store.Tests;

public class LmdbLoaderTests
{
    [Fact]
    public void Lmdb_loads_and_says_which()
    {
        LmdbStatus status = LmdbLoader.Status;
        Assert.True(status.Loaded, status.ToString());
        Assert.Contains("LMDB", status.Version);
        Assert.StartsWith("LMDB loaded: ", status.ToString());
        Assert.False(string.IsNullOrEmpty(status.Path));
    }

    [Fact]
    public void Failure_statement_lists_attempts_and_fix()
    {
        var status = new LmdbStatus(false, null, null, ["a.so: not found", "b.so: GLIBC_2.38 not found"]);
        string line = status.ToString();
        Assert.Contains("a.so: not found", line);
        Assert.Contains("GLIBC_2.38", line);
        Assert.Contains("apt-get install liblmdb-dev", line);
    }
}
