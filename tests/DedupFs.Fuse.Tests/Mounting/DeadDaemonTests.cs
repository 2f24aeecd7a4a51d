using System.Diagnostics;
using DedupFs.Fuse.Mounting;
using DedupFs.Fuse.Tests.Support;
using DedupFs.Tests.Support;

namespace DedupFs.Fuse.Tests.Mounting;

/// <summary>
/// A daemon killed with SIGKILL in the middle of a request leaves a mount that answers
/// "Transport endpoint is not connected"; the unmount path must still clean it up.
/// </summary>
public class DeadDaemonTests
{
    [Fact]
    public void KilledDaemonLeavesAMountTheLazyUnmountRemoves()
    {
        string mountPoint = Directory.CreateTempSubdirectory("dedupfs-dead-").FullName;
        Process? daemon = null;
        Process? reader = null;
        try
        {
            daemon = StartTestHost("memory", mountPoint);
            File.WriteAllText(Path.Combine(mountPoint, "kept"), "x");

            // A request in flight when the daemon dies.
            reader = Process.Start(new ProcessStartInfo("cat", Path.Combine(mountPoint, "slow")) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            Thread.Sleep(300);
            Assert.False(reader.HasExited);

            Assert.Equal(0, Posix.Kill(daemon.Id, Posix.SigKill));
            Assert.True(daemon.WaitForExit(10_000));

            // The kernel aborts the connection when the daemon's /dev/fuse descriptors close:
            // the blocked reader fails instead of hanging.
            Assert.True(reader.WaitForExit(10_000), "the reader stayed blocked after the daemon died");
            Assert.NotEqual(0, reader.ExitCode);

            Assert.True(MountTable.IsFuseMount(mountPoint));
            var error = Assert.ThrowsAny<IOException>(() => Directory.GetFileSystemEntries(mountPoint));
            Assert.Contains("not connected", error.Message, StringComparison.OrdinalIgnoreCase);

            Assert.True(FuseMounter.Unmount(mountPoint, lazy: true));
            Assert.False(MountTable.IsFuseMount(mountPoint));
            Assert.Empty(Directory.GetFileSystemEntries(mountPoint));
        }
        finally
        {
            Stop(reader);
            Stop(daemon);
            if (MountTable.IsFuseMount(mountPoint))
            {
                FuseMounter.Unmount(mountPoint, lazy: true);
            }

            Directory.Delete(mountPoint);
        }
    }

    [Fact]
    public void SigtermUnmountsAndExitsCleanly()
    {
        string mountPoint = Directory.CreateTempSubdirectory("dedupfs-term-").FullName;
        Process? daemon = null;
        try
        {
            daemon = StartTestHost("null", mountPoint);
            Assert.Equal(1L << 40, new FileInfo(Path.Combine(mountPoint, "zero")).Length);
            Assert.Equal(0, Posix.Kill(daemon.Id, 15));
            Assert.True(daemon.WaitForExit(20_000));
            Assert.Equal(0, daemon.ExitCode);
            Assert.False(MountTable.IsFuseMount(mountPoint));
        }
        finally
        {
            Stop(daemon);
            if (MountTable.IsFuseMount(mountPoint))
            {
                FuseMounter.Unmount(mountPoint, lazy: true);
            }

            Directory.Delete(mountPoint);
        }
    }

    /// <summary>Runs the test host in its own process and waits until it says the mount answers.</summary>
    internal static Process StartTestHost(string kind, string mountPoint)
    {
        string host = Path.Combine(AppContext.BaseDirectory, "DedupFs.Fuse.TestHost.dll");
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
        var info = new ProcessStartInfo(dotnet) { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(host);
        info.ArgumentList.Add(kind);
        info.ArgumentList.Add(mountPoint);
        var process = Process.Start(info)!;
        var ready = process.StandardOutput.ReadLineAsync();
        if (!ready.Wait(TimeSpan.FromSeconds(30)) || ready.Result is not { } line || !line.StartsWith("mounted", StringComparison.Ordinal))
        {
            Stop(process);
            throw new InvalidOperationException($"test host did not mount: {process.StandardError.ReadToEnd()}");
        }

        return process;
    }

    private static void Stop(Process? process)
    {
        if (process is { HasExited: false })
        {
            process.Kill();
            process.WaitForExit(10_000);
        }

        process?.Dispose();
    }
}
