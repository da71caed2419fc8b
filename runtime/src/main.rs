//! `iggy-dlq`: the command line of the iggy-dlq runtime.

fn main() {
    eprintln!("iggy-dlq: the `run` and `demo` commands are not in this build yet");
    std::process::exit(2);
}
