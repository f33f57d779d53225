using BenchmarkDotNet.Running;
using Konsole.Bench;

// dotnet run -c Release --project bench/Konsole.Bench -- <scenario> [--turns N]
// Scenarios: latency, streaming, realcli, memory, micro (BenchmarkDotNet), all (every end-to-end scenario).
var scenario = args.FirstOrDefault() ?? "all";
var turns = args.SkipWhile(a => a != "--turns").Skip(1).Select(int.Parse).FirstOrDefault(2000);
if (scenario == "sse-readers") // the streaming scenario's client process
    return await SseReaders.RunAsync(args[1..]);
if (scenario == "micro")
{
    BenchmarkSwitcher.FromAssembly(typeof(Report).Assembly).Run(args[1..]);
    return 0;
}

var reports = new List<Report>();
var chunks = args.SkipWhile(a => a != "--chunks").Skip(1).Select(int.Parse).FirstOrDefault(2000);
if (scenario is "latency" or "all")
    reports.Add(await LatencyBench.RunAsync(turns, warmup: 500));
if (scenario is "streaming" or "all")
    reports.Add(await StreamingBench.RunAsync(chunks));
if (scenario is "realcli" or "all")
    reports.Add(await RealCliBench.RunAsync(args.Contains("--turns") ? turns : 50)); // real CLIs are slow: 50 by default
if (scenario is "memory" or "all")
    reports.Add(await MemoryBench.RunAsync());
if (reports.Count == 0)
{
    Console.Error.WriteLine($"unknown scenario '{scenario}': latency, streaming, realcli, memory, micro, all");
    return 2;
}
var output = Path.Combine(AppContext.BaseDirectory, $"bench-{scenario}.md");
await File.WriteAllTextAsync(output, string.Join("\n", reports.Select(r => r.Text)));
Console.WriteLine($"written: {output}");
return 0;
