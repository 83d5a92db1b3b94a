//! `steward notice`: publish the privacy notice.

use crate::Outcome;
use crate::cli::{Global, NoticeArgs, NoticeFormat};

pub fn run(global: &Global, args: &NoticeArgs) -> Outcome {
    let (_, declaration) = match super::valid_declaration(&global.declaration) {
        Ok(v) => v,
        Err(outcome) => return outcome,
    };
    if let Err(outcome) = super::check::refuse_drift(global, &declaration) {
        return outcome;
    }
    let notice = steward_policy::notice::build(&declaration);
    let text = match args.format {
        NoticeFormat::Html => notice.to_html(),
        NoticeFormat::Md => notice.to_markdown(),
    };
    super::emit(text.as_bytes(), args.output.as_deref())
}
