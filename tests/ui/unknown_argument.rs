// A misspelt macro argument.
fn main() {
    let _f = rootemu::filter!(polcy = "x.yaml");
}
