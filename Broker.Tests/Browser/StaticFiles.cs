using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace Broker.Tests.Browser;

/// <summary>A local HTTP server (Kestrel on 127.0.0.1, a free port) serving a fixed set of files to the browser specs.</summary>
public sealed class StaticFiles : IAsyncDisposable
{
    private readonly WebApplication _app;

    private StaticFiles(WebApplication app, int port)
    {
        _app = app;
        Origin = $"http://127.0.0.1:{port}";
    }

    /// <summary>scheme://host:port of the pages served here (what the browser sends as Origin).</summary>
    public string Origin { get; }

    /// <param name="files">URL path → (file, content type).</param>
    public static async Task<StaticFiles> StartAsync(int port, IReadOnlyDictionary<string, (string File, string ContentType)> files)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port));
        var app = builder.Build();
        app.Run(async http =>
        {
            if (!files.TryGetValue(http.Request.Path.Value ?? "", out var file))
            {
                http.Response.StatusCode = StatusCodes.Status404NotFound;
                return;
            }

            http.Response.ContentType = file.ContentType;
            await http.Response.SendFileAsync(file.File);
        });
        await app.StartAsync();
        return new StaticFiles(app, port);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
