using System.Net;
using System.Text;
using Broker.Tests.Durability;
using Broker.Tests.Interop;

namespace Broker.Tests.Operations;

/// <summary>
/// With Metrics:OtlpEndpoint a real Broker.Node process pushes the "Broker" meter over OTLP/HTTP (protobuf) to the
/// receiver the test runs: the POSTs to /v1/metrics carry the broker's instrument names.
/// </summary>
public sealed class OtlpExportSpecs : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("broker-otlp-").FullName;

    [Fact]
    public async Task The_node_pushes_its_metrics_to_an_OTLP_receiver()
    {
        var port = InteropEnvironment.FreePort();
        using var receiver = new HttpListener();
        receiver.Prefixes.Add($"http://127.0.0.1:{port}/");
        receiver.Start();

        using var node = await BrokerNodeProcess.StartAsync($"--Node:DataDir={_dir}", $"--Metrics:OtlpEndpoint=http://127.0.0.1:{port}",
            "--Metrics:OtlpIntervalSeconds=1");
        await ExternalProcess.RunAsync(InteropEnvironment.MosquittoPub,
            ["-h", "127.0.0.1", "-p", node.MqttPort.ToString(), "-t", "otlp/t", "-m", "x", "-q", "1"], TimeSpan.FromSeconds(20));

        // Pushes come every second; one that counts the publish above arrives within a few.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            var context = await receiver.GetContextAsync().WaitAsync(deadline - DateTime.UtcNow);
            using var body = new MemoryStream();
            await context.Request.InputStream.CopyToAsync(body);
            var path = context.Request.Url!.AbsolutePath;
            var contentType = context.Request.ContentType;
            context.Response.StatusCode = 200;
            context.Response.Close();

            Assert.Equal("/v1/metrics", path);
            Assert.Equal("application/x-protobuf", contentType);
            var text = Encoding.UTF8.GetString(body.ToArray()); // protobuf keeps strings as UTF-8 bytes
            Assert.Contains("mqtt_connections", text, StringComparison.Ordinal);
            Assert.Contains("Broker", text, StringComparison.Ordinal);
            if (text.Contains("mqtt_messages_received_total", StringComparison.Ordinal) && text.Contains("mqtt_connects_total", StringComparison.Ordinal))
            {
                break;
            }
        }
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
