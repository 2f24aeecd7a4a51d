using DedupFs.Cli.Commands;
using DedupFs.Store;

namespace DedupFs.Cli.Tests;

/// <summary>dedupfs fsck: the report, the repair, and fsck(8)'s exit codes.</summary>
public sealed class FsckCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("dedupfs-cli-fsck-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private (int Exit, string Output, string Error) Fsck(string directory, bool repair = false)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = FsckCommand.Run(directory, repair, output, error);
        return (exit, output.ToString(), error.ToString());
    }

    [Fact]
    public void ANewStoreIsClean()
    {
        Store.Store.Open(_dir).Dispose();
        var (exit, output, _) = Fsck(_dir);
        Assert.Equal(FsckCommand.Clean, exit);
        Assert.Contains("0 problems", output);
    }

    [Fact]
    public void AnOrphanPageIsReportedThenRepairedThenClean()
    {
        using (var store = Store.Store.Open(_dir))
        {
            var page = new byte[Store.Store.PageSize];
            page[0] = 42;
            using (store.EnterMutation())
            {
                store.AllocatePage(page, K4os.Hash.xxHash.XXH64.DigestOf(page)); // referenced by no mapping
            }

            store.Commit();
        }

        var (checkExit, checkOutput, _) = Fsck(_dir);
        Assert.Equal(FsckCommand.Uncorrected, checkExit);
        Assert.Contains("problem:", checkOutput);

        var (repairExit, repairOutput, _) = Fsck(_dir, repair: true);
        Assert.Equal(FsckCommand.Corrected, repairExit);
        Assert.Contains("repaired:", repairOutput);

        Assert.Equal(FsckCommand.Clean, Fsck(_dir).Exit);
    }

    [Fact]
    public void MissingDirectoryAndNonStoreAreOperationalErrors()
    {
        var (exit, _, error) = Fsck(Path.Combine(_dir, "nope"));
        Assert.Equal(FsckCommand.OperationalError, exit);
        Assert.Contains("no such directory", error);

        File.WriteAllText(Path.Combine(_dir, "junk"), "not a store");
        var (exit2, output2, error2) = Fsck(_dir);
        Assert.Equal(FsckCommand.OperationalError, exit2);
        Assert.Equal("", output2);
        Assert.False(string.IsNullOrWhiteSpace(error2));
    }

    [Fact]
    public void AStoreInUseIsRefused()
    {
        using var store = Store.Store.Open(_dir);
        var (exit, _, error) = Fsck(_dir);
        Assert.Equal(FsckCommand.OperationalError, exit);
        Assert.Contains("dedupfs: fsck:", error);
    }
}
