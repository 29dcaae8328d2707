using System.Net;
using System.Text;
using System.Text.Json;
using Broker.Tests.Interop;

namespace Broker.Tests.Security;

/// <summary>
/// A device registry the test runs (HttpListener on 127.0.0.1, a free port): answers each POSTed JSON question with
/// <c>{"result": decide(question)}</c>, after <see cref="Delay"/>, and keeps the questions it was asked.
/// </summary>
public sealed class AuthService : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly List<JsonElement> _questions = new();

    public AuthService(Func<JsonElement, string> decide, string path = "auth")
    {
        var port = InteropEnvironment.FreePort();
        Url = $"http://127.0.0.1:{port}/{path}";
        _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        _listener.Start();
        _ = Task.Run(async () =>
        {
            while (_listener.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await _listener.GetContextAsync();
                }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
                {
                    return;
                }

                _ = Task.Run(() => AnswerAsync(context, decide));
            }
        });
    }

    public string Url { get; }

    /// <summary>How long each answer takes (a slow registry).</summary>
    public TimeSpan Delay { get; set; }

    public IReadOnlyList<JsonElement> Questions
    {
        get
        {
            lock (_questions)
            {
                return _questions.ToList();
            }
        }
    }

    public void Dispose() => _listener.Close();

    private async Task AnswerAsync(HttpListenerContext context, Func<JsonElement, string> decide)
    {
        try
        {
            var question = (await JsonDocument.ParseAsync(context.Request.InputStream)).RootElement.Clone();
            lock (_questions)
            {
                _questions.Add(question);
            }

            if (Delay > TimeSpan.Zero)
            {
                await Task.Delay(Delay);
            }

            var answer = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new { result = decide(question) }));
            context.Response.ContentType = "application/json";
            await context.Response.OutputStream.WriteAsync(answer);
            context.Response.Close();
        }
        catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or IOException)
        {
            // the listener was closed while answering
        }
    }
}
