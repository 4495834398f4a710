"""The words the benchmark corpora are made of (a daily AI digest in Chinese mixed with English), shared by
benchmarks/build.py and benchmarks/importing.py so both measure the same shape of content."""

LINKY_TAGS = [("AI 日报", 1.0), ("大模型", 0.9), ("开源", 0.9), ("OpenAI", 0.8), ("Agents", 0.8), ("论文", 0.7),
              ("多模态", 0.7), ("融资", 0.6), ("芯片", 0.45), ("机器人", 0.35), ("安全", 0.3), ("政策", 0.25),
              ("评测", 0.25)]
ORGS = ["openai", "anthropics", "google-deepmind", "meta-llama", "mistralai", "QwenLM", "deepseek-ai", "NVIDIA",
        "MoonshotAI", "huggingface", "vllm-project", "ggml-org", "langchain-ai", "microsoft", "THUDM", "01-ai"]
REPOS = ["agents", "cookbook", "inference", "llama-models", "evals", "tokenizer", "serving", "rl-toolkit", "vision",
         "speech", "kernels", "benchmarks", "sdk-python", "awesome-llm", "quantization", "datasets"]
HOSTS = ["https://openai.com/index/", "https://www.anthropic.com/news/", "https://blog.google/technology/ai/",
         "https://ai.meta.com/blog/", "https://mp.weixin.qq.com/s/", "https://zhuanlan.zhihu.com/p/",
         "https://www.theverge.com/ai/", "https://techcrunch.com/2020/", "https://www.jiqizhixin.com/articles/",
         "https://36kr.com/p/", "https://www.qbitai.com/2020/", "https://venturebeat.com/ai/"]
IMAGE_HOSTS = ["https://pbs.twimg.com/media/", "https://cdn.jsdelivr.net/gh/ai-daily/img@main/",
               "https://mmbiz.qpic.cn/mmbiz_png/", "https://i.imgur.com/"]
VERBS = ["发布了", "开源了", "更新了", "上线了", "公布了", "推出了", "完成了", "宣布了"]
THINGS = ["新一代推理模型", "多模态 Agent 框架", "长上下文版本", "端侧小模型", "代码助手", "语音模型", "评测基准",
          "训练数据集", "推理加速库", "新一轮融资", "安全报告", "开发者 API"]
REMARKS = ["社区反响热烈，Hacker News 首页讨论超过 500 条。", "官方称 latency 降低了一半，价格不变。",
           "支持 128K context，并在 SWE-bench 上刷新了纪录。", "权重以 Apache-2.0 许可证发布，可商用。",
           "目前仅对 Pro 用户开放，API 下周上线。", "作者在 X 上做了详细解读，值得一看。",
           "对比 GPT-4o 和 Claude，在中文任务上表现更好。", "论文附带完整的 ablation 实验和训练细节。"]
EN_TITLES = ["Scaling Test-Time Compute", "Sparse Mixture of Experts at Scale", "Tool Use for Long-Horizon Agents",
             "Efficient KV Cache Compression", "Reward Models Are Not Enough", "Multimodal Reasoning Benchmarks",
             "Distilling Chain-of-Thought", "On the Safety of Open Weights"]
SECTIONS = ["今日要闻", "开源项目", "论文速递", "产品与工具", "行业动态", "观点与讨论"]
