namespace DedupFs.Store.Tests;

public class Crc32CTests
{
    [Fact]
    public void Known_vector()
    {
        // CRC-32C("123456789") = 0xE3069283 (RFC 3720 check value)
        Assert.Equal(0xE3069283u, Crc32C.Compute("123456789"u8));
    }

    [Fact]
    public void Three_chain_page_crc_equals_the_simple_loop()
    {
        var rnd = new Random(5);
        var page = new byte[4096];
        for (int i = 0; i < 200; i++)
        {
            rnd.NextBytes(page);
            if (i % 7 == 0) Array.Clear(page);
            Assert.Equal(Crc32C.ComputeSimple(page), Crc32C.Compute(page));
        }
    }

    [Fact]
    public void Key_and_payload_form_equals_concatenation()
    {
        byte[] a = [1, 2, 3, 4, 5, 6, 7, 8, 9], b = [10, 11, 12];
        Assert.Equal(Crc32C.Compute([.. a, .. b]), Crc32C.Compute(a, b));
    }
}
