using BenchmarkDotNet.Running;
using Konsole.Bench;

// dotnet run -c Release --project bench/Konsole.Bench -- <scenario> [--turns N] [--chunks N] [--accounts A,B,...]
// Scenarios: latency, streaming, realcli, memory, micro (BenchmarkDotNet), all (every end-to-end scenario).
const string usage = "usage: Konsole.Bench <latency|streaming|realcli|memory|all> [--turns N] [--chunks N] [--accounts A,B,...]\n" +
    "       Konsole.Bench micro [BenchmarkDotNet options, e.g. --filter '*']";
var scenario = args.FirstOrDefault() ?? "all";
if (scenario == "sse-readers") // the streaming scenario's client process
    return await SseReaders.RunAsync(args[1..]);
if (scenario == "micro")
{
    BenchmarkSwitcher.FromAssembly(typeof(Report).Assembly).Run(args[1..]);
    return 0;
}
if (scenario is not ("latency" or "streaming" or "realcli" or "memory" or "all"))
    return Refuse($"unknown scenario '{scenario}'");

var options = new Dictionary<string, string>();
for (var i = 1; i < args.Length; i += 2)
{
    if (args[i] is not ("--turns" or "--chunks" or "--accounts"))
        return Refuse($"unknown option '{args[i]}'");
    if (i + 1 == args.Length)
        return Refuse($"{args[i]} needs a value");
    options[args[i]] = args[i + 1];
}
int? Count(string option) => options.TryGetValue(option, out var text) ? int.TryParse(text, out var n) && n > 0 ? n : -1 : null;
var turns = Count("--turns");
var chunks = Count("--chunks");
var accounts = options.TryGetValue("--accounts", out var list)
    ? list.Split(',').Select(a => int.TryParse(a, out var n) && n > 0 ? n : -1).ToArray()
    : MemoryBench.DefaultAccountCounts;
if (turns < 0 || chunks < 0)
    return Refuse($"{(turns < 0 ? "--turns" : "--chunks")} takes a positive whole number");
if (accounts.Length < 2 || accounts.Any(a => a < 0) || Enumerable.Range(1, accounts.Length - 1).Any(i => accounts[i] <= accounts[i - 1]))
    return Refuse("--accounts takes two or more ascending positive counts, such as 2,50,200");

var reports = new List<Report>();
try
{
    if (scenario is "latency" or "all")
        reports.Add(await LatencyBench.RunAsync(turns ?? 2000, warmup: 500));
    if (scenario is "streaming" or "all")
        reports.Add(await StreamingBench.RunAsync(chunks ?? 2000));
    if (scenario is "realcli" or "all")
        reports.Add(await RealCliBench.RunAsync(turns ?? 50)); // real CLIs are slow: 50 by default
    if (scenario is "memory" or "all")
        reports.Add(await MemoryBench.RunAsync(accounts));
}
catch (Exception e) when (e is InvalidOperationException or TimeoutException)
{
    // A turn that failed its check (an answer not its prompt's, a stream refused or cut) or never ended: no figure counts.
    Console.Error.WriteLine($"a check FAILED: {e.Message}\nthese figures do not count");
    return 1;
}
var output = Path.Combine(AppContext.BaseDirectory, $"bench-{scenario}.md");
await File.WriteAllTextAsync(output, string.Join("\n", reports.Select(r => r.Text)));
Console.WriteLine($"written: {output}");
if (reports.Any(r => r.Failed))
{
    Console.Error.WriteLine("a check FAILED (see the report): these figures do not count");
    return 1;
}
return 0;

static int Refuse(string problem)
{
    Console.Error.WriteLine($"{problem}\n{usage}");
    return 2;
}
