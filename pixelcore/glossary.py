"""The English/Chinese word lists that captions and the prompt reader share.

Everything here is data: the glossary that renders every word of a texture name in Chinese (grouped the way
``python -m pixelcore vocab`` lists them), the synonyms people type for those words, colour words and shades in
both languages, Chinese measure words, words that carry no content ("pixel art", 像素风格) and a small table of
traditional characters. :mod:`pixelcore.captions` writes training captions from it; :mod:`pixelcore.prompts`
reads prompts with it.

A *canonical* synonym is one the prompt reader rewrites to the caption word before tokenizing ("spade" becomes
"shovel", 铲子 becomes 锹): only words that never occur in a texture name and mean one thing. Synonyms that are
also name words or that are ambiguous ("iron" for steel, 水桶, 铁锹) are *caption* synonyms: the caption
generator uses them and the model learns them.
"""

from __future__ import annotations

ZH_COLORS: dict[str, str] = {
    "red": "红色", "orange": "橙色", "yellow": "黄色", "gold": "金色", "brown": "棕色",
    "green": "绿色", "cyan": "青色", "blue": "蓝色", "purple": "紫色", "pink": "粉色",
    "white": "白色", "gray": "灰色", "black": "黑色",
}
"""The Chinese caption word for each of :data:`pixelcore.colors.COLOR_NAMES`."""

MATERIALS: dict[str, str] = {
    "wood": "木", "wooden": "木", "stone": "石", "iron": "铁", "steel": "铁", "golden": "金", "diamond": "钻石",
    "mese": "梅斯", "copper": "铜", "bronze": "青铜", "tin": "锡", "obsidian": "黑曜石", "glass": "玻璃",
    "wool": "羊毛", "silver": "银", "mithril": "秘银", "brass": "黄铜", "coal": "煤", "clay": "黏土",
    "cotton": "棉花", "paper": "纸", "leather": "皮革", "crystal": "水晶", "quartz": "石英", "marble": "大理石",
    "granite": "花岗岩", "basalt": "玄武岩", "plastic": "塑料", "metal": "金属", "cactus": "仙人掌", "ice": "冰",
    "snow": "雪", "lava": "岩浆", "water": "水", "fire": "火", "bone": "骨头", "bones": "骨头", "silicon": "硅",
    "sandstone": "砂石", "desert": "沙漠", "mossy": "苔", "moss": "苔藓", "tar": "焦油", "oil": "油",
    "rubber": "橡胶", "concrete": "混凝土", "terracotta": "陶瓦", "emerald": "绿宝石", "ruby": "红宝石",
    "sapphire": "蓝宝石", "amethyst": "紫水晶", "netherrack": "地狱岩", "nether": "下界", "glowstone": "萤石",
    "wrought": "锻", "chainlink": "链环", "straw": "稻草", "bamboo": "竹", "pine": "松木", "acacia": "金合欢木",
    "aspen": "白杨木", "jungle": "丛林", "birch": "桦木", "oak": "橡木", "willow": "柳木", "palm": "棕榈",
    "redwood": "红木", "mahogany": "桃花心木", "sakura": "樱花", "cobblestone": "圆石", "mineral": "矿物",
    "admin": "管理员", "adobe": "土坯", "cement": "水泥", "charcoal": "木炭", "flint": "燧石", "wax": "蜡",
    "paraffin": "石蜡", "asphalt": "沥青", "etherium": "以太", "hardwood": "硬木", "copperpatina": "铜绿",
    "terrycloth": "毛巾布", "fiber": "纤维", "glue": "胶水", "honey": "蜂蜜", "blood": "血",
}
TOOLS: dict[str, str] = {
    "sword": "剑", "pickaxe": "镐", "axe": "斧", "shovel": "锹", "hoe": "锄", "knife": "刀", "sickle": "镰刀",
    "hammer": "锤", "bow": "弓", "arrow": "箭", "shield": "盾牌", "helmet": "头盔", "chestplate": "胸甲",
    "leggings": "护腿", "boots": "靴子", "armor": "盔甲", "spear": "矛", "wrench": "扳手", "screwdriver": "螺丝刀",
    "key": "钥匙", "shears": "剪刀", "crossbow": "弩", "staff": "法杖", "wand": "魔杖", "trowel": "泥铲",
    "scythe": "长柄镰刀", "saw": "锯", "airbrush": "喷枪", "binoculars": "望远镜", "lasso": "套索",
    "net": "网兜", "bugnet": "捕虫网", "saddle": "马鞍", "padlock": "挂锁", "anvil": "铁砧",
    # weapons and gear of the extra item sources (pixelcore.sources)
    "gun": "枪", "rifle": "步枪", "pistol": "手枪", "shotgun": "霰弹枪", "revolver": "左轮手枪", "katana": "武士刀",
    "broadsword": "阔剑", "rapier": "细剑", "scimitar": "弯刀", "machete": "砍刀", "dagger": "匕首", "mace": "钉头锤",
    "morningstar": "流星锤", "javelin": "标枪", "blade": "刀刃", "gloves": "手套", "gauntlets": "护手",
    "pants": "裤子", "jeans": "牛仔裤", "shoes": "鞋子", "medal": "奖牌", "badge": "徽章", "rosette": "玫瑰花结",
    "flask": "烧瓶", "coins": "硬币",
}
ITEMS: dict[str, str] = {
    "apple": "苹果", "ingot": "锭", "lump": "矿块", "gem": "宝石", "potion": "药水", "bottle": "瓶",
    "feather": "羽毛", "flower": "花", "torch": "火把", "bucket": "桶", "book": "书", "stick": "棍",
    "sticks": "棍子", "seed": "种子", "seeds": "种子", "bread": "面包", "dye": "染料", "flour": "面粉",
    "wheat": "小麦", "string": "线", "ball": "球", "egg": "蛋", "meat": "肉", "fish": "鱼", "mushroom": "蘑菇",
    "sapling": "树苗", "coin": "硬币", "dust": "粉", "fragment": "碎片", "fragments": "碎片", "shard": "碎片",
    "nugget": "粒", "bar": "条", "rod": "棒", "wire": "电线", "plate": "板", "sheet": "片", "gear": "齿轮",
    "chip": "芯片", "bag": "袋子", "banana": "香蕉", "orange": "橙子", "lemon": "柠檬", "strawberry": "草莓",
    "coconut": "椰子", "onion": "洋葱", "carrot": "胡萝卜", "potato": "土豆", "blueberry": "蓝莓", "cake": "蛋糕",
    "cookie": "饼干", "pie": "派", "soup": "汤", "bowl": "碗", "cup": "杯子", "mug": "杯子", "heart": "心",
    "star": "星星", "skull": "头骨", "eye": "眼睛", "ring": "戒指", "gunpowder": "火药", "rope": "绳子",
    "map": "地图", "sign": "告示牌", "ladder": "梯子", "door": "门", "doors": "门", "trapdoor": "活板门",
    "gate": "门", "fence": "栅栏", "rail": "铁轨", "cart": "矿车", "carts": "", "boat": "船", "bed": "床",
    "chest": "箱子", "furnace": "熔炉", "lamp": "灯", "lantern": "灯笼", "candle": "蜡烛", "vessel": "容器",
    "vessels": "", "vase": "花瓶", "pot": "锅", "cauldron": "大锅", "barrel": "桶", "crate": "木箱",
    "painting": "画", "picture": "图画", "clock": "钟", "flag": "旗帜", "coral": "珊瑚", "shell": "贝壳",
    "horn": "角", "tooth": "牙", "paw": "爪", "wing": "翅膀", "tnt": "炸药", "bomb": "炸弹", "fern": "蕨类",
    "rose": "玫瑰", "tulip": "郁金香", "dandelion": "蒲公英", "geranium": "天竺葵", "viola": "紫罗兰",
    "daisy": "雏菊", "reed": "芦苇", "papyrus": "纸莎草", "kelp": "海带", "vine": "藤蔓", "vines": "藤蔓",
    "root": "根", "roots": "根", "berry": "浆果", "berries": "浆果", "fruit": "水果", "nut": "坚果",
    "nuts": "坚果", "blossom": "花", "petal": "花瓣", "flowers": "花", "powder": "粉末", "dough": "面团",
    "chicken": "鸡", "butterfly": "蝴蝶", "firefly": "萤火虫", "fireflies": "萤火虫", "bee": "蜜蜂",
    "jelly": "果冻", "olive": "橄榄", "seaweed": "海草", "sushi": "寿司", "ivy": "常春藤", "stem": "茎",
    "tubers": "块茎", "needles": "针叶", "seedling": "幼苗", "bonsai": "盆景", "chrysanthemum": "菊花",
    "waterlily": "睡莲", "firethorn": "火棘", "plant": "植物", "shrubbery": "灌木丛", "marram": "滨草",
    "angler": "鮟鱇鱼", "bluefin": "蓝鳍金枪鱼", "blueram": "蓝凤凰鱼", "catfish": "鲶鱼", "clownfish": "小丑鱼",
    "coy": "锦鲤", "flathead": "牛尾鱼", "jellyfish": "水母", "pike": "梭子鱼", "piranha": "食人鱼",
    "plaice": "鲽鱼", "pufferfish": "河豚", "salmon": "三文鱼", "seahorse": "海马", "trout": "鳟鱼",
    "bishop": "主教", "king": "国王", "knight": "骑士", "pawn": "兵", "queen": "王后", "rook": "车",
    "chessboard": "棋盘", "clothes": "衣服", "mirror": "镜子", "toothbrush": "牙刷", "toothpaste": "牙膏",
    "tray": "托盘", "towel": "毛巾", "cushion": "坐垫", "curtain": "窗帘", "nametag": "名牌", "logo": "标志",
    "spool": "线轴", "cardbox": "纸箱", "box": "箱", "smoke": "烟", "flame": "火焰", "embers": "余烬",
    "cloud": "云", "skeleton": "骨架", "mailbox": "邮箱", "trashcan": "垃圾桶", "telephone": "电话",
    "television": "电视", "speaker": "音箱", "stereo": "音响", "motor": "电机", "fan": "风扇",
}
BLOCKS: dict[str, str] = {
    "block": "方块", "planks": "木板", "plank": "木板", "brick": "砖", "bricks": "砖", "leaves": "树叶",
    "leaf": "树叶", "ore": "矿石", "sand": "沙", "dirt": "泥土", "grass": "草",
    "stone with": "石头里的",  # "stone with iron ore" -> 石头里的铁矿石, the engine's ore-in-stone blocks
    "log": "原木", "tree": "原木", "trunk": "树干", "cobble": "圆石", "gravel": "沙砾", "soil": "土壤",
    "mud": "泥", "rock": "岩石", "tile": "瓷砖", "tiles": "瓷砖", "shingles": "瓦片", "roof": "屋顶",
    "roofing": "屋面", "wall": "墙", "floor": "地板", "pavement": "路面", "cobweb": "蜘蛛网", "bush": "灌木",
    "shrub": "灌木", "hedge": "树篱", "hay": "干草", "bale": "捆", "bookcase": "书架", "glowlight": "发光灯",
    "lightstone": "光石", "meselamp": "梅斯灯", "permafrost": "永久冻土", "crust": "硬壳", "frame": "框",
    "panel": "面板", "grate": "格栅", "lattice": "格子", "mesh": "网", "cage": "笼子", "chain": "链条",
    "scaffolding": "脚手架", "hive": "蜂巢", "window": "窗户", "pane": "窗格", "xpanes": "窗格", "slab": "台阶",
    "stair": "楼梯", "stairs": "楼梯", "stairsplus": "台阶", "pillar": "柱子", "post": "柱", "beam": "横梁",
    "cloth": "布", "fabric": "布料", "rug": "地毯", "carpet": "地毯", "litter": "落叶层", "sponge": "海绵",
    "moonbrick": "月砖", "brobble": "砖砾", "ghoststone": "幽灵石", "glostone": "荧光石", "movestone": "移动石",
    "tatami": "榻榻米", "portal": "传送门", "portals": "传送门", "rack": "架", "bwtile": "黑白瓷砖",
    "sglass": "强化玻璃", "wglass": "木框玻璃", "stones": "石子", "chimney": "烟囱", "skylight": "天窗",
    "commandblock": "命令方块", "noteblock": "音符盒", "rune": "符文",
}
MODIFIERS: dict[str, str] = {
    "small": "小", "large": "大", "big": "大", "dry": "干", "wet": "湿", "dark": "深", "light": "浅",
    "burning": "燃烧的", "polished": "抛光", "smooth": "光滑", "cut": "切制", "cracked": "裂纹", "carved": "雕刻",
    "raw": "生", "cooked": "熟", "empty": "空", "full": "满", "old": "旧", "fancy": "精美", "round": "圆",
    "square": "方", "snowy": "积雪", "frozen": "冰冻", "crystalline": "晶体", "wild": "野", "tall": "高",
    "short": "矮", "long": "长", "simple": "简易", "single": "单个", "baked": "烘焙", "candied": "蜜饯",
    "bright": "明亮", "open": "打开的", "written": "写过的", "clean": "干净", "compressed": "压缩",
    "coniferous": "针叶", "curved": "弯曲", "straight": "直", "crossing": "交叉", "junction": "交叉口",
    "striped": "条纹", "hidden": "隐藏", "fake": "假", "giant": "巨型", "thick": "粗", "thin": "细",
    "cold": "寒冷", "fiery": "炽热", "half": "半", "hard": "硬", "insulated": "绝缘", "invisible": "隐形",
    "colored": "彩色", "lighted": "亮灯", "lucky": "幸运", "super": "超级", "magic": "魔法", "deep": "深层",
    "alt": "备用", "packed": "压实", "sticky": "粘性", "rusty": "生锈", "enhanced": "强化", "scorched": "焦黑",
    "frosted": "磨砂", "frost": "霜", "split": "分割", "outer": "外侧", "inside": "内部", "chiselled": "雕纹",
    "chiseled": "雕纹", "metallic": "金属", "stony": "石质", "quartered": "四格", "woodframed": "木框",
    "boiling": "沸腾", "idle": "闲置", "flowing": "流动", "generic": "通用", "plain": "素", "glow": "发光",
    "emergent": "新生", "japanese": "日式", "blinky": "闪烁", "basic": "基础", "circular": "圆",
    "horizontal": "横", "offset": "错位", "center": "中心", "detail": "细节", "corner": "转角", "edge": "边缘",
    "ends": "末端", "backside": "背面", "rear": "后部", "under": "底下", "top": "顶部", "side": "侧面",
    "foot": "脚", "head": "头", "feet": "脚", "legs": "腿", "torso": "躯干", "body": "机身", "face": "表盘",
    "female": "女", "male": "男", "bg": "背景", "fg": "前景", "fb": "前后", "brk": "刹车", "pwr": "充能",
    "slot": "槽位", "base": "底座", "and": "与", "or": "或", "not": "非", "with": "带", "of": "之",
    "combat": "战斗", "laser": "激光", "fur": "毛皮", "assault": "突击", "chitinous": "甲壳质", "winter": "冬季",
    "tactical": "战术", "hot": "热", "army": "军用", "environmental": "环境防护", "makeshift": "简易", "battle": "战斗",
    "survival": "求生", "high": "高", "fingerless": "露指", "medical": "医用", "heavy": "重型", "composite": "复合",
    "recoilless": "无后坐力", "tainted": "污染", "plasma": "等离子", "pointy": "尖头", "crude": "粗制",
    "pneumatic": "气动", "homemade": "自制", "thermal": "保暖", "electric": "电", "double": "双", "flammable": "易燃",
    "extra": "加", "occult": "神秘", "turnout": "消防", "hiking": "登山", "steeltoed": "钢头", "salvaged": "回收",
    "western": "西部", "armored": "装甲", "great": "巨", "checkered": "格子", "compound": "复合", "hunting": "狩猎",
    "digging": "挖掘", "salted": "咸", "smoked": "熏", "modern": "现代", "recurve": "反曲", "stun": "电击",
    "burnt": "烧焦", "out": "尽", "wrapped": "包裹", "boiled": "煮", "ferromagnetic": "铁磁", "war": "战",
}
OTHER: dict[str, str] = {
    # the long tail of the Luanti names: furniture, machines, mod words; a "" rendering is a mod name said
    # in English only ("moretrees acacia leaves" is 金合欢木树叶)
    "moretrees": "", "lrfurn": "", "meshport": "", "worldedit": "", "stickyblocks": "", "itemframes": "",
    "forniture": "家具", "autocrafter": "自动合成器", "barbecue": "烧烤", "baricade": "路障", "barter": "交易台",
    "bathroom": "浴室", "set": "套件", "bathtub": "浴缸", "clawfoot": "爪脚", "checker": "棋盘格", "wield": "手持",
    "cast": "铸", "fireplace": "壁炉", "ceiling": "天花板", "paint": "油漆", "roller": "滚筒", "circle": "圆形",
    "coffeemaker": "咖啡机", "core": "核心", "farming": "农业", "writer": "写入器", "crack": "裂缝",
    "anylength": "任意长度", "gilly": "吉利", "deckchair": "躺椅", "delayer": "延时器", "deployer": "放置器",
    "desk": "书桌", "drawer": "抽屉", "drawers": "抽屉", "digiline": "数字线", "filter": "过滤器", "input": "输入",
    "output": "输出", "dishwasher": "洗碗机", "display": "显示器", "segment": "段", "dryer": "烘干机",
    "dvd": "DVD", "dvdcd": "DVD光盘", "dvdvcr": "DVD录像机", "vcr": "录像机", "player": "玩家",
    "pattern": "图案", "enchantment": "附魔", "enderchest": "末影箱", "energy": "能量", "particle": "粒子",
    "blades": "叶片", "privacy": "隐私", "fishing": "钓鱼", "bob": "浮漂", "fishtank": "鱼缸", "flight": "飞行",
    "flowerbox": "花箱", "ducha": "淋浴", "toilet": "马桶", "fpga": "FPGA", "programmer": "编程器",
    "diode": "二极管", "source": "源", "cube": "立方体", "glare": "眩光", "layout": "布局", "heating": "加热",
    "element": "元件", "hydro": "水力", "turbine": "涡轮机", "ic": "IC", "inbox": "收件箱", "node": "节点",
    "lightbox": "灯箱", "itemframe": "物品展示框", "pedestal": "基座", "kitchen": "厨房", "sink": "水槽",
    "liquid": "液体", "coffeetable": "茶几", "sofa": "沙发", "mapping": "测绘", "kit": "工具包",
    "medicine": "药品", "microcontroller": "微控制器", "mk": "MK", "mob": "怪物", "spawner": "刷怪笼",
    "arrows": "箭头", "multishelf": "多层架", "pore": "菌孔", "nightstand": "床头柜", "nodebreaker": "破坏器",
    "detector": "探测器", "noentry": "禁止进入", "object": "物体", "extract": "提取物", "oven": "烤箱",
    "overlay": "叠加层", "piston": "活塞", "pusher": "推杆", "plasmascreen": "等离子屏", "sheeting": "薄膜",
    "strip": "条", "power": "能量", "pressure": "压力", "prison": "监狱", "projection": "投影",
    "screen": "屏幕", "protector": "保护器", "radiator": "暖气片", "controls": "控制", "rainforest": "雨林",
    "receiver": "接收器", "select": "选择", "shop": "商店", "slide": "推拉", "solar": "太阳能",
    "driver": "驱动单元", "stand": "支架", "storage": "储存", "tank": "罐", "fittings": "配件", "kappa": "河童",
    "maki": "卷", "sweeper": "清扫器", "swing": "秋千", "switch": "开关", "cord": "线", "dial": "拨号盘",
    "handset": "听筒", "teriyaki": "照烧", "blast": "爆炸", "boom": "爆炸", "trampoline": "蹦床",
    "trap": "陷阱", "connection": "连接", "drinking": "饮用", "bump": "凸起", "washing": "洗", "machine": "机",
    "wieldhand": "手", "shutter": "百叶窗", "windowblind": "百叶帘", "windowblinds": "百叶帘", "strings": "绳",
    "workbench": "工作台", "worktable": "工作台", "pos": "位置", "river": "河", "grove": "树林",
    "prairie": "草原", "texture": "", "shelf": "架子", "bookshelf": "书架", "grandfather": "落地",
    "table": "桌子", "chair": "椅子", "bench": "长椅", "lever": "拉杆", "button": "按钮", "pipe": "管道",
    "tube": "管道", "cabinet": "柜子", "analog": "模拟", "lock": "锁", "stairside": "楼梯侧面", "agar": "琼脂",
    "slice": "片", "wardrobe": "衣柜", "piece": "块", "nand": "与非", "nor": "或非", "xor": "异或", "filing": "文件",
    "submachine": "冲锋", "award": "奖", "survivor": "幸存者", "sledge": "大", "butcher": "屠夫", "boeing": "波音",
    "deputy": "副警长", "detective": "侦探", "marshal": "警长", "birchbark": "桦树皮", "thigh": "大腿",
    "boxing": "拳击", "clown": "小丑", "dress": "礼服", "baseball": "棒球", "motorcycle": "摩托车", "bell": "钟形",
    "firefighter": "消防员", "beekeeping": "养蜂", "knee": "膝", "cargo": "工装", "ski": "滑雪", "swimming": "游泳",
    "lemat": "勒马特", "masterkey": "万能钥匙", "hip": "随身", "hockey": "曲棍球", "trench": "战壕",
    "mining": "采矿", "pocket": "口袋", "punch": "拳刺", "olympic": "奥运", "style": "", "target": "靶",
    "lobster": "龙虾", "scout": "侦察", "aux": "辅助", "work": "工作", "bowling": "保龄球", "elephant": "大象",
    "radiation": "辐射", "gauge": "口径", "flintlock": "燧发", "fillet": "鱼片", "fighting": "格斗", "swiss": "瑞士",
    "butter": "黄油", "acto": "美工", "steak": "牛排", "chunk": "块", "nail": "钉",
}
PHRASES: dict[str, str] = {
    # several words said as one in Chinese; the glossary tries three words, then two, then one
    "t junction": "丁字交叉口", "tjunction": "丁字交叉口", "cast iron": "铸铁", "washing machine": "洗衣机",
    "pressure plate": "压力板", "filing cabinet": "文件柜", "medicine cabinet": "药柜", "drinking glass": "水杯",
    "key skeleton": "万能钥匙", "circular saw": "圆锯", "kappa maki": "黄瓜卷", "nether rack": "下界岩",
    "packed ice": "浮冰", "dvd player": "DVD播放器", "fishing bob": "钓鱼浮漂", "heating element": "加热元件",
    "book of portals": "传送门之书", "light source": "光源", "water source": "水源", "lava source": "岩浆源",
    "gate and": "与门", "gate nand": "与非门", "gate nor": "或非门", "gate not": "非门", "gate or": "或门",
    "gate xor": "异或门", "gate diode": "二极管", "slide door": "推拉门", "power plant": "能量植物",
    "doors trapdoor": "活板门", "speaker driver": "音箱驱动单元", "mob spawner": "刷怪笼", "clock face": "钟表盘",
    "burnt out": "烧尽的", "chunk of": "", "fillet of fish": "鱼片", "award star": "奖章星", "hip flask": "随身酒壶",
    "swiss army knife": "瑞士军刀",
}
GLOSSARY: dict[str, str] = {**MATERIALS, **TOOLS, **ITEMS, **BLOCKS, **MODIFIERS, **OTHER, **PHRASES, **ZH_COLORS}
"""English word (or short phrase) to Chinese for every word of the Luanti texture names; "" for mod names."""

# Inside a name, these colour words are materials or fruit ("gold ingot" is 金锭).
NOUN_SENSES = {"gold": "金", "orange": "橙子", "silver": "银", "emerald": "绿宝石"}
# A material named alone is the block of it: "wood" is planks (木板), not 木.
ZH_SINGLE = {"wood": "木板", "stone": "石头", "gold": "金", "iron": "铁", "steel": "钢", "cobble": "圆石",
             "glass": "玻璃", "tree": "原木"}

# --- synonyms -------------------------------------------------------------------------------------------------
EN_CANONICAL: dict[str, str] = {
    "pick": "pickaxe", "pick axe": "pickaxe", "spade": "shovel", "hatchet": "axe", "pail": "bucket",
    "jewel": "gem", "gemstone": "gem", "helm": "helmet", "breastplate": "chestplate", "chest plate": "chestplate",
    "armour": "armor", "greaves": "leggings", "foliage": "leaves", "cobblestone": "cobble", "cuirass": "chestplate",
}
"""English words the reader rewrites to the caption word: none is a word of a Luanti name (a few name items of
the extra sources, where they mean the same: a hatchet is an axe, and is rendered so in Chinese)."""
EN_CAPTION_SYNONYMS: dict[str, tuple[str, ...]] = {
    "sword": ("blade",), "steel": ("iron",), "wood": ("wooden",), "leggings": ("pants",),
    "planks": ("wooden planks", "boards"), "potion": ("potion bottle",),
}
"""Other English words captions use for a name word (the model learns these; the reader keeps them)."""

ZH_CANONICAL: dict[str, str] = {
    "铲子": "锹", "铲": "锹", "斧头": "斧", "斧子": "斧", "锄头": "锄", "镐子": "镐", "镐头": "镐", "十字镐": "镐",
    "鹤嘴锄": "镐", "宝剑": "剑", "长剑": "剑", "药剂": "药水", "魔药": "药水", "金属锭": "锭", "铠甲": "盔甲",
    "护甲": "盔甲", "盾": "盾牌", "叶子": "树叶", "砖块": "砖", "矿": "矿石", "黄金": "金", "金子": "金",
    "金刚石": "钻石", "钢铁": "铁", "靴": "靴子", "沙子": "沙", "胸铠": "胸甲",
}
"""Chinese words the reader rewrites to the glossary word (unambiguous, never part of a rendering)."""
ZH_CAPTION_SYNONYMS: dict[str, tuple[str, ...]] = {
    "锹": ("铁锹",), "桶": ("水桶",), "木": ("木头",), "石": ("石头",), "铁": ("钢",), "宝石": ("晶石",),
    "木板": ("木头板",), "方块": ("块",), "方": ("方形",), "头盔": ("盔",), "皮革": ("皮",),
    "橡木": ("橡树",), "树叶": ("叶",), "松木": ("松树",), "桦木": ("桦树",),
}
"""Other Chinese words captions use for a glossary word (the model learns these; the reader keeps them)."""

# --- colours --------------------------------------------------------------------------------------------------
EN_SHADES: tuple[str, ...] = ("dark", "light", "pale", "bright", "deep", "vivid", "pastel", "neon", "soft")
"""Words before a colour that the reader drops ("dark red" reads as red): captions name one colour per hue."""
EN_COLOR_EXTRA: dict[str, str] = {
    "reddish": "red", "bluish": "blue", "greenish": "green", "yellowish": "yellow", "purplish": "purple",
    "pinkish": "pink", "brownish": "brown", "orangey": "orange", "gilded": "gold", "ruby-red": "red",
    "sky-blue": "blue", "skyblue": "blue", "navy-blue": "blue", "blood-red": "red", "charcoal-gray": "gray",
}
"""English colour words beyond :data:`pixelcore.colors.COLOR_SYNONYMS` that the reader maps."""
EN_COLOR_PHRASES: dict[str, str] = {
    "sky blue": "blue", "navy blue": "blue", "royal blue": "blue", "baby blue": "blue", "blood red": "red",
    "fire red": "red", "forest green": "green", "grass green": "green", "lime green": "green",
    "sea green": "cyan", "hot pink": "pink", "baby pink": "pink", "jet black": "black", "pitch black": "black",
    "snow white": "white", "off white": "white", "lemon yellow": "yellow", "golden yellow": "gold",
}
ZH_COLOR_SYNONYMS: dict[str, str] = {
    **{w: "红色" for w in ("赤红色", "赤红", "赤色", "鲜红色", "鲜红", "大红色", "大红", "深红色", "深红", "暗红色",
                           "暗红", "朱红色", "朱红", "血红色", "血红", "绯红色", "绯红", "正红色", "浅红色",
                           "淡红色", "红红", "酒红色")},
    **{w: "橙色" for w in ("橘色", "橘黄色", "橘黄", "橙黄色", "橙黄", "橘红色", "橘红", "桔色", "桔黄色")},
    **{w: "黄色" for w in ("明黄色", "明黄", "淡黄色", "淡黄", "浅黄色", "浅黄", "柠檬黄", "鹅黄色", "亮黄色",
                           "嫩黄色")},
    **{w: "金色" for w in ("金黄色", "金黄", "黄金色", "金灿灿", "香槟色", "土豪金")},
    **{w: "棕色" for w in ("褐色", "棕褐色", "咖啡色", "深棕色", "浅棕色", "茶色", "赭色", "土黄色", "栗色",
                           "棕黄色", "深褐色")},
    **{w: "绿色" for w in ("翠绿色", "翠绿", "深绿色", "深绿", "浅绿色", "浅绿", "草绿色", "草绿", "墨绿色", "墨绿",
                           "嫩绿色", "嫩绿", "碧绿色", "碧绿", "橄榄绿", "军绿色", "绿油油", "亮绿色")},
    **{w: "青色" for w in ("蓝绿色", "青绿色", "湖蓝色", "水蓝色", "天青色", "松石绿", "湖绿色")},
    **{w: "蓝色" for w in ("天蓝色", "天蓝", "深蓝色", "深蓝", "浅蓝色", "浅蓝", "湛蓝色", "湛蓝", "宝蓝色", "宝蓝",
                           "海蓝色", "海蓝", "藏青色", "藏蓝色", "藏蓝", "靛蓝色", "蔚蓝色", "蔚蓝", "淡蓝色",
                           "淡蓝", "亮蓝色", "蓝蓝")},
    **{w: "紫色" for w in ("深紫色", "深紫", "浅紫色", "浅紫", "淡紫色", "淡紫", "紫罗兰色", "薰衣草色", "紫红色",
                           "亮紫色")},
    **{w: "粉色" for w in ("粉红色", "粉红", "桃红色", "桃红", "玫红色", "玫红", "玫瑰色", "洋红色", "品红色",
                           "浅粉色", "淡粉色", "粉粉")},
    **{w: "白色" for w in ("纯白色", "纯白", "雪白色", "雪白", "乳白色", "乳白", "银白色", "银白", "洁白",
                           "白白")},
    **{w: "灰色" for w in ("浅灰色", "浅灰", "深灰色", "深灰", "银色", "银灰色", "银灰", "灰白色", "铁灰色")},
    **{w: "黑色" for w in ("漆黑", "漆黑色", "乌黑", "乌黑色", "纯黑色", "纯黑", "深黑色", "墨色", "墨黑色",
                           "黑乎乎")},
}
"""Chinese colour words and shades the reader maps to the caption colour words of :data:`ZH_COLORS`."""
ZH_BARE_COLORS: dict[str, str] = {
    "red": "红", "orange": "橙", "yellow": "黄", "green": "绿", "blue": "蓝", "purple": "紫", "white": "白",
    "gray": "灰", "black": "黑", "brown": "棕",
}
"""One-character colours as in 红剑 (gold 金, cyan 青 and pink 粉 are left out: 金锭, 青铜, 粉 are other words)."""

# --- measure words --------------------------------------------------------------------------------------------
TOOL_HEADS = ("sword", "pickaxe", "axe", "shovel", "hoe", "knife", "sickle", "hammer", "bow", "crossbow", "spear",
               "wrench", "screwdriver", "key", "shears", "staff", "wand", "trowel", "scythe")
_WEAPON_HEADS = ("gun", "rifle", "pistol", "shotgun", "revolver", "katana", "broadsword", "rapier", "scimitar",
                 "machete", "dagger", "mace", "morningstar", "blade")
ZH_MEASURE: dict[str, str] = {**{tool: "一把" for tool in TOOL_HEADS},
                              "ingot": "一块", "lump": "一块", "brick": "一块", "gem": "一颗",
                              "seed": "一颗", "apple": "一个", "book": "一本", "bottle": "一瓶",
                              "potion": "一瓶", "feather": "一根", "stick": "一根",
                              **{weapon: "一把" for weapon in _WEAPON_HEADS},
                              "gloves": "一双", "shoes": "一双", "pants": "一条", "jeans": "一条", "medal": "一枚",
                              "badge": "一枚", "coins": "一堆", "javelin": "一支"}
"""Measure word by head noun for item captions; other items get 一个, blocks none."""
ZH_DEFAULT_MEASURE = "一个"
ZH_MEASURE_ALT: dict[str, tuple[str, ...]] = {
    "apple": ("一颗",), "helmet": ("一顶",), "chestplate": ("一件",), "armor": ("一件", "一套"),
    "leggings": ("一条",), "boots": ("一双",), "shield": ("一面",), "bucket": ("一只",), "door": ("一扇",),
    "lamp": ("一盏",), "lantern": ("一盏",), "map": ("一张",), "paper": ("一张",), "coin": ("一枚",),
    "ring": ("一枚",), "arrow": ("一支",), "flower": ("一朵",), "leaves": ("一片",), "fish": ("一条",),
    "egg": ("一颗",), "ingot": ("一根",), "gem": ("一枚",), "rope": ("一根", "一条"), "bread": ("一块",),
}
"""Further measure words people use for a head noun (captions draw from these besides :data:`ZH_MEASURE`)."""
ZH_MEASURE_CHARS = "把个块颗瓶本根只双顶件套面片张扇盏桶枚支朵条堆幅"
ZH_NUMERALS = "一两二三四五几"

# --- words without content ------------------------------------------------------------------------------------
EN_FILLER: tuple[str, ...] = (
    "pixel art", "pixel-art", "pixelart", "pixel style", "pixel", "pixels", "pixelated", "8-bit", "8bit",
    "16-bit", "16bit", "minecraft style", "minecraft-style", "in minecraft style", "in the style of minecraft",
    "in pixel art style", "in pixel art", "as pixel art", "for minecraft", "minecraft", "luanti", "minetest",
    "style", "texture", "textures", "icon", "icons", "sprite", "sprites", "image", "drawing", "artwork",
    "game asset", "asset", "inventory icon", "draw", "draw me", "make", "make me", "create", "generate",
    "render", "give me", "show me", "i want", "i need", "i'd like", "i would like", "please", "pls", "can you",
    "could you", "for me", "thanks", "thank you", "me",
)
"""English words and phrases that say nothing about the texture; the reader drops them."""
EN_FILLER_NOUNS: frozenset[str] = frozenset({
    "texture", "textures", "icon", "icons", "sprite", "sprites", "image", "drawing", "artwork", "pixel art",
    "pixel-art", "pixelart", "game asset", "asset", "inventory icon"})
"""Filler said as a noun ("a texture of a red sword"): an article before it and an "of" after it go with it."""
EN_FUNCTION_WORDS: frozenset[str] = frozenset({
    "a", "an", "the", "of", "with", "and", "in", "on", "is", "that", "some", "one", "made", "from", "colored",
    "coloured", "color", "colour", "for", "to", "its", "it", "or", "like", "very", "kind", "type", "item",
    "items", "block", "blocks", "x", "my", "your", "just", "really", "this", "these", "into", "at", "by"})
"""Words captions and prompts use around the content; known, kept, and no concept of their own."""

ZH_FILLER: tuple[str, ...] = (
    "像素风格", "像素风", "像素画", "像素艺术", "像素图", "像素", "我的世界风格", "我的世界", "麦块", "风格",
    "贴图", "材质贴图", "纹理", "图标", "图片", "图像", "素材", "游戏", "一下", "给我画", "帮我画", "请画",
    "画出", "画个", "帮我生成", "给我生成", "生成", "帮我做", "给我做", "帮我", "给我", "请", "我要", "要", "我想要",
    "想要", "来", "谢谢", "吧", "呢", "可以", "能不能",
    *("画" + n + m for n in "一两" for m in ZH_MEASURE_CHARS),
)
"""Chinese words that say nothing about the texture; the reader drops them (画一把 as a whole: 画 alone is a
painting)."""
ZH_PARTICLES: tuple[str, ...] = (
    "的", "和", "与", "跟", "及", "带有", "带着", "带", "有", "是", "着", "了", "也", "还", "很", "非常", "颜色",
    "一些", "一点", "里", "里的", "上", "中", "之", "用", "做的", "做成的", "制成的", "材质", "那种", "色",
)
"""Chinese grammar words: known, kept, and no concept of their own."""

ZH_KIND_WORDS: dict[str, str] = {"方块": "block", "块": "block", "物品": "item", "道具": "item"}

# --- traditional characters -----------------------------------------------------------------------------------
TRAD_TO_SIMP: dict[str, str] = dict(pair for pair in (
    "劍剑 鐵铁 鋼钢 銅铜 錫锡 銀银 鑽钻 鎬镐 鏟铲 鍬锹 鋤锄 頭头 藥药 蘋苹 錠锭 寶宝 綠绿 藍蓝 "
    "紅红 黃黄 塊块 磚砖 葉叶 樹树 礦矿 個个 顆颗 畫画 給给 幫帮 風风 圖图 標标 貼贴 鏈链 門门 "
    "燈灯 書书 鐘钟 雙双 護护 鎧铠 劑剂 麵面 魚鱼 雞鸡 齒齿 輪轮 鑰钥 錘锤 鐮镰 紙纸 線线 繩绳 "
    "膠胶 鍋锅 爐炉 車车 軌轨 漿浆 雲云 淺浅 銹锈 鏽锈 錦锦 鯉鲤 為为 帶带 與与 樣样 請请 來来 "
    "張张 隻只 盞盏 條条 麼么 檯台 階阶 樓楼 戶户 簾帘 櫃柜 燭烛 籠笼 馬马 殼壳 貝贝 鑄铸 圓圆 "
    "頂顶 褲裤 製制 機机 電电 視视 話话 開开 鎖锁 鏡镜 響响 純纯 鮮鲜 麗丽 艷艳 豔艳 莖茎 蓮莲 "
    "蘭兰 鬱郁 雛雏 櫻樱 樺桦 楊杨 歡欢 鬆松 這这 種种 顏颜 們们 長长 號号 寬宽 類类 麥麦 棗枣 "
    "橋桥 燒烧 鳥鸟 獸兽 龍龙 盤盘 瑪玛 湯汤 蝦虾 彎弯 網网 燼烬 蠟蜡 鑲镶 槍枪 準准 鍊链 鋸锯 "
    "錨锚 織织 綿绵 羅罗 變变 顯显 點点 樂乐 學学 會会 說说 讓让 對对 觀观 裡里 裏里 擁拥 邊边 "
    "島岛 陽阳 陰阴 傳传 氣气 體体 實实 萬万 歲岁 聖圣 騎骑 國国 農农 場场 廠厂 壓压 縮缩 爾尔 "
    "灣湾 節节 屬属 鉤钩 錢钱 幣币 鈕钮 鈴铃 錶表"
).split())
"""Traditional characters of the glossary's words and their simplified forms (one character each)."""
