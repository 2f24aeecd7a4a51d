using DedupFs.Fuse.Api;
using DedupFs.Fuse.Mounting;
using DedupFs.Fuse.Session;
using DedupFs.Fuse.TestHost;

namespace DedupFs.Fuse.Tests.Support;

/// <summary>
/// A filesystem mounted in a fresh temporary directory for one test, served in this process.
/// Dispose always unmounts (lazily as a last resort) and removes the directory, even when
/// the test failed.
/// </summary>
internal sealed class TempMount : IDisposable
{
    public TempMount(IFuseFileSystem? fs = null, MountMethod method = MountMethod.Auto, int workers = 4, Func<string, FuseMountOptions>? options = null)
    {
        FileSystem = fs ?? new MemoryFileSystem();
        Path = Directory.CreateTempSubdirectory("dedupfs-fuse-test-").FullName;
        try
        {
            Session = FuseSession.Mount(FileSystem, options?.Invoke(Path) ?? new FuseMountOptions { MountPoint = Path, FsName = "dedupfs-test", Method = method },
                new FuseSessionOptions { Workers = workers });
            if (!Session.WaitForInit(TimeSpan.FromSeconds(20)))
            {
                throw new TimeoutException("the kernel never sent INIT");
            }
        }
        catch
        {
            Cleanup();
            throw;
        }
    }

    public IFuseFileSystem FileSystem { get; }

    public MemoryFileSystem Memory => (MemoryFileSystem)FileSystem;

    public FuseSession Session { get; } = null!;

    public string Path { get; }

    public string this[string relative] => System.IO.Path.Combine(Path, relative);

    public void Dispose() => Cleanup();

    private void Cleanup()
    {
        try
        {
            (FileSystem as MemoryFileSystem)?.ReleaseSlowReaders();
            Session?.Dispose();
        }
        finally
        {
            if (MountTable.IsFuseMount(Path))
            {
                FuseMounter.Unmount(Path, lazy: true);
            }

            try
            {
                Directory.Delete(Path);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>Asks the kernel to drop unused dentries and inodes, which sends FORGETs.</summary>
    public static void DropCaches() => File.WriteAllText("/proc/sys/vm/drop_caches", "2");
}
