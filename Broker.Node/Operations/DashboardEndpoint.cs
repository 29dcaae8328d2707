using System.Reflection;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Broker.Node.Operations;

/// <summary>
/// The operator's dashboard at <c>/dashboard</c> on the operations endpoint, served only with <c>Management:Token</c>
/// set. The page is static (index.html, dashboard.js, dashboard.css, embedded in this assembly: nothing is loaded from
/// elsewhere, so it works without internet access); it asks for the token in a login form and reads everything
/// through the management API with it, polling every two seconds. Its content security policy allows this origin only.
/// </summary>
public static class DashboardEndpoint
{
    private static readonly Dictionary<string, (string Resource, string ContentType)> Assets = new(StringComparer.Ordinal)
    {
        // Routing ignores a trailing slash: this serves /dashboard and /dashboard/ alike.
        ["/dashboard"] = ("dashboard/index.html", "text/html; charset=utf-8"),
        ["/dashboard/dashboard.js"] = ("dashboard/dashboard.js", "text/javascript; charset=utf-8"),
        ["/dashboard/dashboard.css"] = ("dashboard/dashboard.css", "text/css; charset=utf-8"),
    };

    public static void Map(WebApplication app)
    {
        var contents = Assets.ToDictionary(a => a.Key, a => (Bytes: Read(a.Value.Resource), a.Value.ContentType), StringComparer.Ordinal);
        foreach (var (path, asset) in contents)
        {
            app.MapGet(path, (HttpContext http) =>
            {
                var headers = http.Response.Headers;
                headers.ContentSecurityPolicy =
                    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
                headers.XContentTypeOptions = "nosniff";
                headers.CacheControl = "no-cache";
                return Results.Bytes(asset.Bytes, asset.ContentType);
            });
        }
    }

    private static byte[] Read(string resource)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"dashboard asset {resource} is not embedded in Broker.Node");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
