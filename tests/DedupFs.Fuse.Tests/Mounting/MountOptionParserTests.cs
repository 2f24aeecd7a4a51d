using DedupFs.Fuse.Mounting;

namespace DedupFs.Fuse.Tests.Mounting;

public class MountOptionParserTests
{
    private static readonly FuseMountOptions Template = new() { MountPoint = "/mnt/x" };

    [Fact]
    public void FuseOptionsAreTakenAndTheRestIsLeftInOrder()
    {
        var (options, unknown) = MountOptionParser.Parse("ro,allow_other,cache=shared,default_permissions,fsname=store1,inline_dedup=off,noatime,max_read=131072", Template);
        Assert.True(options.ReadOnly);
        Assert.True(options.AllowOther);
        Assert.True(options.DefaultPermissions);
        Assert.True(options.NoAtime);
        Assert.Equal("store1", options.FsName);
        Assert.Equal(131072u, options.MaxRead);
        Assert.Equal("/mnt/x", options.MountPoint);
        Assert.Equal(new[] { "cache=shared", "inline_dedup=off" }, unknown.Select(u => $"{u.Key}={u.Value}"));
        Assert.Contains("allow_other", options.FusermountOptions());
        Assert.Contains("nosuid", options.FusermountOptions());
    }

    [Fact]
    public void LaterWordsWinAndFstabWordsAreIgnored()
    {
        var (options, unknown) = MountOptionParser.Parse("ro,rw,defaults,noauto,_netdev,suid,nosuid", Template);
        Assert.False(options.ReadOnly);
        Assert.False(options.Suid);
        Assert.Empty(unknown);
    }

    [Theory]
    [InlineData("max_read=0")]
    [InlineData("max_read=lots")]
    [InlineData("fsname=")]
    [InlineData("fsname=a\nb")]
    [InlineData("subtype")]
    public void BadValuesAreClearErrors(string options)
    {
        var error = Assert.Throws<FuseMountException>(() => MountOptionParser.Parse(options, Template));
        Assert.False(string.IsNullOrWhiteSpace(error.Message));
    }
}
